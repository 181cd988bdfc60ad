"""The page a consent link opens: who asks, for whom, until when, and one button to go on.

Nothing reaches Tailscale from a GET: a cross-site link, a prefetching scanner or a
Tailscale that approves repeat consents without asking can never complete a consent on its
own. Only the page's POST, with the flow's token and this browser's flow cookie, continues.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from fastapi.responses import HTMLResponse

from service.models import ProvisioningRequest
from service.settings import Settings
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
) -> HTMLResponse:
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
    return render_page(200, "Add a device as you?", message, facts=facts, form=form, tone="ask")
