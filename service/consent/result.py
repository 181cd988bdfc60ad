"""The page a person lands on after approving: who, which device, what happens next."""

from __future__ import annotations

from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from service.consent.flow import last_finished_request
from service.grants.store import load_grant
from service.provisioning.status import RequestStatus
from service.provisioning.store import load_request
from service.web.pages import render_page

APPROVED = frozenset({RequestStatus.READY, RequestStatus.CLAIMED, RequestStatus.JOINED})


def nothing_to_show() -> HTMLResponse:
    """For a browser that finished no consent lately: claim nothing it did not do."""
    return render_page(
        200,
        "Nothing to show here",
        "This page shows the outcome once you approve a consent link, and this browser has "
        "not approved one in the last hour.",
        "To approve a device, open the consent link you were sent.",
        tone="plain",
    )


async def result_page(session: AsyncSession, browser_id: str | None) -> HTMLResponse:
    """The outcome of the consent this browser finished last, or the neutral page."""
    request_id = await last_finished_request(session, browser_id)
    if request_id is None:
        return nothing_to_show()
    request = await load_request(session, request_id)
    if request.status not in APPROVED:
        return nothing_to_show()
    grant = await load_grant(session, request.grant_id)
    signed_in = (
        f" (signed in to Tailscale as {grant.login_name})" if grant and grant.login_name else ""
    )
    device = f"the device {request.hostname}" if request.hostname else "a new device"
    if request.status == RequestStatus.JOINED:
        next_step = f"It has joined the tailnet in {request.user_id}'s name. Nothing more to do."
    else:
        next_step = (
            f"Next, {request.created_by}, which asked for it, collects its key, and the device "
            f"joins the tailnet in {request.user_id}'s name. You need not do anything more."
        )
    return render_page(
        200,
        "Device approved",
        f"You approved {device} for {request.user_id}{signed_in}.",
        next_step,
        "You can close this window.",
    )
