"""The page a consent link opens: who asks, for whom, until when, and one button to go on.

Nothing reaches Tailscale from a GET: a cross-site link, a prefetching scanner or a
Tailscale that approves repeat consents without asking can never complete a consent on its
own. Only the page's POST, with the flow's token and this browser's flow cookie, continues.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.events import ORIGIN_BROWSER, Actor, record_refused_attempt
from service.consent.mismatch import IDENTITY_MISMATCH, mismatch_error
from service.models import ProvisioningRequest
from service.settings import Settings
from service.web.errors import BrowserError
from service.web.pages import PageForm, render_page


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "unknown"


def confirmation_page(
    settings: Settings,
    request: ProvisioningRequest,
    expected_login: str | None,
    token: str,
    state: str,
    tailnet_login: str | None = None,
) -> HTMLResponse:
    """``tailnet_login``: who Tailscale Serve says opened the page, when it says so."""
    facts = [
        ("Asked by", request.created_by),
        ("For user", request.user_id),
        ("Sign in as", expected_login or "the Tailscale account of this user"),
    ]
    if request.hostname:
        facts.append(("Device name", request.hostname))
    facts.append(("Link valid until", _when(request.consent_expires_at)))
    message = (
        f"{request.created_by} asks to add a device to the tailnet that carries your identity. "
        "Continue only if you are the person named below; Tailscale will ask you to approve."
    )
    form = PageForm(
        action="/authorize",
        button="Continue to Tailscale",
        fields={"request": token, "csrf_token": state},
        redirect_origins=(_origin(settings.tailscale_login_url),),
    )
    more = (f"You are signed in to the tailnet as {tailnet_login}.",) if tailnet_login else ()
    return render_page(
        200, "Add a device as you?", message, *more, facts=facts, form=form, tone="ask"
    )


async def refuse_other_tailnet_login(
    sessions: async_sessionmaker[AsyncSession],
    request: ProvisioningRequest,
    expected_login: str | None,
    tailnet_login: str,
) -> None:
    """Say no before Tailscale is involved when the person who opened the link is signed in
    to the tailnet as someone other than the request expects; audited. The checks after
    consent still run: this only makes the answer early and honest."""
    if not expected_login or tailnet_login.casefold() == expected_login.casefold():
        return
    await record_refused_attempt(
        sessions,
        actor=Actor(id=tailnet_login, type="USER", login_name=tailnet_login),
        method="GET",
        path="/authorize",
        error=f"{IDENTITY_MISMATCH}: {mismatch_error(tailnet_login, expected_login)}, "
        "from the tailnet identity of the browser, before Tailscale",
        user_id=request.user_id,
        origin=ORIGIN_BROWSER,
    )
    raise BrowserError(
        403,
        "Wrong tailnet account",
        f"You are signed in to the tailnet as {tailnet_login}, but this link is for "
        f"{expected_login}. Nothing was sent to Tailscale and nothing was handed out. If the "
        "device is for you, ask whoever sent the link to make a request for you.",
    )
