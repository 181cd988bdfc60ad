"""/me: a person's own page — their pending requests, grants and devices, and what they can
do about each (withdraw, remove, decline), every action confirmed first."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ORIGIN_BROWSER
from service.console.actions import ActionDep, Confirmation, confirmation_page, person_actor
from service.console.holdings import (
    Owner,
    holdings_of,
    owned_device,
    owned_grant,
    owned_request,
    owner_of_login,
)
from service.console.identity import Person, SignedInDep
from service.console.pages import message_page, render
from service.console.timeline import request_timeline
from service.grants.status import GrantStatus
from service.provisioning.cancel import cancel_request
from service.provisioning.failures import USER_DECLINED
from service.provisioning.status import RequestStatus
from service.state import AppContext
from service.users.offboarding import remove_user_device, withdraw_grant
from service.web.deps import ContextDep, SessionDep
from service.web.fields import NodeId
from service.web.openapi import page_responses

router = APIRouter(tags=["pages for tailnet users (browser)"])
LIVE_GRANTS = frozenset({GrantStatus.ACTIVE, GrantStatus.NEEDS_CONSENT})
BACK = ("/me", "Back to my page")
_PAGES: dict[int | str, str] = {
    200: "The page",
    403: "Not signed in through tailscale serve, or (for an action) a missing or wrong CSRF "
    "token: nothing was done",
    404: "Nothing of the kind is held under your login",
    400: "A malformed id",
}
Key = TypeVar("Key")
Found = TypeVar("Found")
RequestId = Annotated[uuid.UUID, Path(description="A provisioning request's id")]
GrantId = Annotated[uuid.UUID, Path(description="A grant's id")]


async def _mine(
    context: AppContext,
    person: Person,
    find: Callable[[AsyncSession, Owner, Key], Awaitable[Found]],
    key: Key,
) -> Found:
    """The thing ``find`` looks up, if it is the person's: else the "not found" page. A short
    session of its own, closed before the action calls Tailscale."""
    async with context.sessions() as session:
        owner = await owner_of_login(session, context.settings, person.login)
        return await find(session, owner, key)


@router.get(
    "/me",
    summary="Your page: what tsprov holds under your tailnet login",
    response_class=HTMLResponse,
    responses=page_responses(_PAGES),
)
async def my_page(
    request: Request, person: SignedInDep, context: ContextDep, session: SessionDep
) -> HTMLResponse:
    """Pending requests, grants and devices of the users your login stands for."""
    owner = await owner_of_login(session, context.settings, person.login)
    held = await holdings_of(session, owner)
    return render(
        request,
        "me.html",
        title="Your devices and consents",
        held=held,
        live_grants=LIVE_GRANTS,
        width="wide",
    )


@router.get(
    "/me/requests/{request_id}",
    summary="One of your requests and its history",
    response_class=HTMLResponse,
    responses=page_responses(_PAGES),
)
async def my_request(
    request: Request,
    request_id: RequestId,
    person: SignedInDep,
    context: ContextDep,
    session: SessionDep,
) -> HTMLResponse:
    """The request's facts and its audit events, oldest first; only for its own person."""
    owner = await owner_of_login(session, context.settings, person.login)
    provisioning_request = await owned_request(session, owner, request_id)
    timeline = await request_timeline(session, provisioning_request)
    return render(
        request,
        "request.html",
        title="Request history",
        item=provisioning_request,
        timeline=timeline,
        width="wide",
    )


@router.post(
    "/me/grants/{grant_id}/withdraw",
    summary="Withdraw one of your grants",
    response_class=HTMLResponse,
    responses=page_responses(_PAGES),
)
async def withdraw(
    request: Request, grant_id: GrantId, action: ActionDep, context: ContextDep
) -> HTMLResponse:
    """Asks first; confirmed, revokes it (secrets wiped, its open requests cancelled)."""
    grant = await _mine(context, action.person, owned_grant, grant_id)
    if not action.confirmed:
        return confirmation_page(
            request,
            Confirmation(
                f"Withdraw grant {str(grant.id)[:8]}?",
                "tsprov will wipe what this consent gave it, cancel the requests waiting on it "
                "and delete an unclaimed key at Tailscale. Devices that already joined stay.",
                "Withdraw",
                facts=[
                    ("Grant", str(grant.id)),
                    ("For user", grant.user_id),
                    ("Mode", grant.mode),
                    ("Status", grant.status),
                ],
                back=BACK,
            ),
        )
    actor = person_actor(action.person)
    outcome = await withdraw_grant(context, actor, grant.id, origin=ORIGIN_BROWSER)
    return message_page(
        request,
        200,
        "Grant withdrawn",
        f"Grant {grant.id} no longer lets anyone add devices as you.",
        f"At Tailscale: {outcome}.",
        back=BACK,
    )


@router.post(
    "/me/devices/{node_id}/remove",
    summary="Remove a device tsprov provisioned for you",
    response_class=HTMLResponse,
    responses=page_responses(_PAGES),
)
async def remove_device(
    request: Request, node_id: NodeId, action: ActionDep, context: ContextDep
) -> HTMLResponse:
    """Asks first; confirmed, deletes the device at Tailscale."""
    provisioned = await _mine(context, action.person, owned_device, node_id)
    name = provisioned.device_name or provisioned.hostname or node_id
    if not action.confirmed:
        return confirmation_page(
            request,
            Confirmation(
                f"Remove device {name}?",
                "tsprov will delete this device from the tailnet. It loses its connection at once.",
                "Remove",
                facts=[("Device", name), ("Node id", node_id), ("For user", provisioned.user_id)],
                back=BACK,
            ),
        )
    actor = person_actor(action.person)
    await remove_user_device(context, actor, provisioned.user_id, node_id, origin=ORIGIN_BROWSER)
    return message_page(
        request, 200, "Device removed", f"{name} was deleted from the tailnet.", back=BACK
    )


@router.post(
    "/me/requests/{request_id}/decline",
    summary="Decline a request waiting for you",
    response_class=HTMLResponse,
    responses=page_responses(_PAGES),
)
async def decline(
    request: Request, request_id: RequestId, action: ActionDep, context: ContextDep
) -> HTMLResponse:
    """Asks first; confirmed, cancels it: its caller reads `cancelled`, `user_declined`."""
    pending = await _mine(context, action.person, owned_request, request_id)
    if pending.status != RequestStatus.AWAITING_CONSENT:
        return message_page(
            request,
            409,
            "Nothing to decline",
            f"This request is {pending.status}, no longer waiting for you.",
            back=BACK,
        )
    if not action.confirmed:
        return confirmation_page(
            request,
            Confirmation(
                f"Decline the request from {pending.created_by}?",
                "Its consent link stops working, and whoever asked is told you declined.",
                "Decline",
                facts=[
                    ("Asked by", pending.created_by),
                    ("For user", pending.user_id),
                    ("Device name", pending.hostname or "not given"),
                ],
                back=BACK,
            ),
        )
    actor = person_actor(action.person)
    await cancel_request(
        context.sessions,
        actor,
        pending.id,
        origin=ORIGIN_BROWSER,
        reason=USER_DECLINED,
        only_from=RequestStatus.AWAITING_CONSENT,
    )
    return message_page(
        request,
        200,
        "Request declined",
        f"{pending.created_by} will see that you declined. No device was made.",
        back=BACK,
    )
