"""What a consent callback does once its flow is consumed: exchange, bind, store, audit."""

from __future__ import annotations

import enum
import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import (
    ORIGIN_BROWSER,
    WORKER,
    Actor,
    Target,
    record_event,
    record_refused_attempt,
    user_actor,
)
from service.consent.flow import ConsumedFlow
from service.db import transaction
from service.grants.status import GrantMode
from service.grants.store import store_grant
from service.models import ProvisioningRequest
from service.provisioning.status import RequestStatus
from service.provisioning.store import load_request
from service.provisioning.transitions import change_status, record_request_failure
from service.state import AppContext
from service.tailscale.client import TailscaleError, TokenGrant
from service.tailscale.wire import InvalidGrant
from service.users.store import find_user
from service.web.errors import BrowserError

log = logging.getLogger("tsprov.consent")
RETRY_MESSAGE = "Tailscale could not complete the sign-in. Please open the consent link again."
# Who consented, when neither the token nor anything else names them: never the expected
# login, which would read as a confirmed identity.
UNKNOWN_LOGIN = "(unknown)"


class Dropped(enum.Enum):
    """Why a token fresh from Tailscale is not kept: the status, title and text of the page."""

    MISMATCH = (
        403,
        "Wrong Tailscale account",
        "You approved with a different Tailscale account than the one expected for this "
        "request. Nothing was handed out; ask for a new link.",
    )
    CLOSED = (409, "Request no longer waiting", "This request was cancelled or completed.")
    EXPIRED = (
        410,
        "Link no longer valid",
        "This consent link expired while you were signing in. Ask for a new link.",
    )

    def page(self) -> BrowserError:
        return BrowserError(*self.value)


async def record_denial(context: AppContext, consumed: ConsumedFlow, error: str) -> None:
    """A declined consent: audited, the request left open so the user may try again."""
    async with transaction(context.sessions) as session:
        request = await load_request(session, consumed.request_id)
        actor = user_actor(request.user_id, None)
        target = Target(id="", name=request.user_id, type="GRANT")
        await record_event(
            session,
            origin=ORIGIN_BROWSER,
            actor=actor,
            target=target,
            action="CREATE",
            error=error,
            details=f"consent for request {request.id}",
            user_id=request.user_id,
        )


async def finish_consent(
    context: AppContext, consumed: ConsumedFlow, code: str
) -> ProvisioningRequest:
    """Exchange the code, check who consented, keep the grant sealed, make the request ready."""
    await _refuse_if_closed(context, consumed)
    try:
        token = await context.tailscale.exchange_code(
            code=code, code_verifier=consumed.verifier, redirect_uri=context.settings.redirect_uri
        )
    except TailscaleError as exc:
        log.warning("code exchange failed: %s", exc.code)
        await _record_exchange_failure(context, consumed, exc.code)
        raise BrowserError(502, "Sign-in not completed", RETRY_MESSAGE) from exc
    dropped = await _store_outcome(context, consumed, token)
    if dropped is not None:
        await _revoke_dropped(context, consumed, code, token, dropped)
        raise dropped.page()
    async with context.sessions() as session:
        return await load_request(session, consumed.request_id)


def _closed(request: ProvisioningRequest) -> Dropped | None:
    """Whether the request still takes a consent: waiting for one, within its window."""
    if request.status != RequestStatus.AWAITING_CONSENT:
        return Dropped.CLOSED
    expires = request.consent_expires_at
    if expires is None or expires <= datetime.now(UTC):
        return Dropped.EXPIRED
    return None


async def _refuse_if_closed(context: AppContext, consumed: ConsumedFlow) -> None:
    """Checked before the exchange: a flow outlives the link's window by up to 10 minutes."""
    async with context.sessions() as session:
        request = await load_request(session, consumed.request_id)
    closed = _closed(request)
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


async def _store_outcome(
    context: AppContext, consumed: ConsumedFlow, token: TokenGrant
) -> Dropped | None:
    """Store the grant, or say why the token is dropped (the transaction commits either way)."""
    key_ring = context.require_key_ring()
    async with transaction(context.sessions) as session:
        request = await load_request(session, consumed.request_id, lock=True)
        closed = _closed(request)
        if closed is not None:
            return closed
        user = await find_user(session, request.user_id)
        expected = user.tailscale_login if user else None
        actor = user_actor(request.user_id, token.login_name or UNKNOWN_LOGIN)
        if expected and token.login_name and token.login_name.lower() != expected.lower():
            await _refuse_identity(session, request, actor, token.login_name, expected)
            return Dropped.MISMATCH
        grant = await store_grant(
            session,
            key_ring,
            token,
            user_id=request.user_id,
            scope=context.settings.oauth_scope,
            actor=actor,
            origin=ORIGIN_BROWSER,
        )
        request.grant_id = grant.id
        request.key_expires_at = grant.expires_at if grant.mode == GrantMode.ONCE else None
        await change_status(
            session, request, RequestStatus.READY, actor=actor, origin=ORIGIN_BROWSER
        )
    return None


async def _refuse_identity(
    session: AsyncSession, request: ProvisioningRequest, actor: Actor, got: str, expected: str
) -> None:
    request.failure_reason = "identity_mismatch"
    await record_request_failure(
        session,
        request,
        actor=actor,
        origin=ORIGIN_BROWSER,
        error=f"consenting identity {got!r} is not the expected {expected!r}",
    )
    await change_status(
        session,
        request,
        RequestStatus.FAILED,
        actor=actor,
        origin=ORIGIN_BROWSER,
        error="identity_mismatch",
    )


async def _record_exchange_failure(context: AppContext, consumed: ConsumedFlow, code: str) -> None:
    async with transaction(context.sessions) as session:
        request = await load_request(session, consumed.request_id)
        target = Target(id="", name=request.user_id, type="GRANT")
        await record_event(
            session,
            origin=ORIGIN_BROWSER,
            actor=user_actor(request.user_id, None),
            target=target,
            action="CREATE",
            error=f"code exchange failed: {code}",
            user_id=request.user_id,
        )


async def _revoke_dropped(
    context: AppContext, consumed: ConsumedFlow, code: str, token: TokenGrant, why: Dropped
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
            f"({why.name.lower()}); revocation asked by replaying its authorization code",
            error=error,
            user_id=request.user_id,
        )
