"""Tokens fresh from Tailscale that tsprov will not keep: why, and asking Tailscale to revoke.

A consent can arrive for a request that closed meanwhile (cancelled, completed, or past its
window while the person was signing in), or from the wrong person. Either way the token
Tailscale just issued is live; it is dropped, Tailscale is asked to revoke it, and the drop
is audited.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from service.audit.events import (
    ORIGIN_BROWSER,
    WORKER,
    Target,
    record_event,
    record_refused_attempt,
    user_actor,
)
from service.consent.flow import ConsumedFlow
from service.db import transaction
from service.models import ProvisioningRequest
from service.provisioning.status import RequestStatus
from service.provisioning.store import load_request
from service.state import AppContext
from service.tailscale.client import TailscaleError, TokenGrant
from service.tailscale.wire import InvalidGrant
from service.web.errors import BrowserError

# Who consented, when neither the token nor anything else names them: never the expected
# login, which would read as a confirmed identity.
UNKNOWN_LOGIN = "(unknown)"


class Dropped(enum.Enum):
    """Why a token is not kept: the status, title and text of the page the person sees."""

    CLOSED = (409, "Request no longer waiting", "This request was cancelled or completed.")
    EXPIRED = (
        410,
        "Link no longer valid",
        "This consent link expired while you were signing in. Ask for a new link.",
    )

    def page(self) -> BrowserError:
        return BrowserError(*self.value)


def closed_for_consent(request: ProvisioningRequest) -> Dropped | None:
    """Whether the request still takes a consent: waiting for one, within its window."""
    if request.status != RequestStatus.AWAITING_CONSENT:
        return Dropped.CLOSED
    expires = request.consent_expires_at
    if expires is None or expires <= datetime.now(UTC):
        return Dropped.EXPIRED
    return None


async def refuse_if_closed(context: AppContext, consumed: ConsumedFlow) -> None:
    """Checked before the exchange: a flow outlives the link's window by up to 10 minutes."""
    async with context.sessions() as session:
        request = await load_request(session, consumed.request_id)
    closed = closed_for_consent(request)
    if closed is None:
        return
    await record_refused_attempt(
        context.sessions,
        actor=user_actor(request.user_id, UNKNOWN_LOGIN),
        method="GET",
        path="/callback",
        error=f"consent for request {request.id} arrived after it {closed.name.lower()}",
        user_id=request.user_id,
        origin=ORIGIN_BROWSER,
    )
    raise closed.page()


async def revoke_dropped(
    context: AppContext, consumed: ConsumedFlow, code: str, token: TokenGrant, why: str
) -> None:
    """Ask Tailscale to revoke a live token tsprov will not keep, and audit the drop.

    Tailscale offers no revocation endpoint for what a consent issued. RFC 6749 §4.1.2 says
    a server SHOULD revoke every token issued from an authorization code that is presented
    again; replaying the code is the one lever tsprov holds. The expected answer is
    ``invalid_grant``; anything else is recorded as the revocation failing.
    """
    error = ""
    try:
        await context.tailscale.exchange_code(
            code=code, code_verifier=consumed.verifier, redirect_uri=context.settings.redirect_uri
        )
        error = "Tailscale redeemed the code twice; the dropped token could not be revoked"
    except InvalidGrant:
        pass
    except TailscaleError as exc:
        error = f"revoking the dropped token failed: {exc.code}"
    kind = "access and refresh tokens" if token.refresh_token else "one-time key"
    async with transaction(context.sessions) as session:
        request = await load_request(session, consumed.request_id)
        await record_event(
            session,
            origin=ORIGIN_BROWSER,
            actor=WORKER,
            target=Target(id="", name=request.user_id, type="GRANT"),
            action="REVOKE",
            details=f"dropped the {kind} of a consent for request {request.id} "
            f"({why}); revocation asked by replaying its authorization code",
            error=error,
            user_id=request.user_id,
        )
