"""What a consent callback does once its flow is consumed: exchange, bind, store, audit."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ORIGIN_BROWSER, Actor, Target, record_event, user_actor
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
from service.users.store import find_user
from service.web.errors import BrowserError

log = logging.getLogger("tsprov.consent")
RETRY_MESSAGE = "Tailscale could not complete the sign-in. Please open the consent link again."


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
    """Exchange the code, check who consented, keep the grant sealed, make the request ready.

    Takes the app state: the flow was consumed and committed before this runs (so a twin
    callback never exchanges twice), and the outcome is stored in a transaction of its own
    after the upstream call, never holding a row lock across it.
    """
    try:
        token = await context.tailscale.exchange_code(
            code=code, code_verifier=consumed.verifier, redirect_uri=context.settings.redirect_uri
        )
    except TailscaleError as exc:
        log.warning("code exchange failed: %s", exc.code)
        await _record_exchange_failure(context, consumed, exc.code)
        raise BrowserError(502, "Sign-in not completed", RETRY_MESSAGE) from exc
    mismatch = await _store_outcome(context, consumed, token)
    if mismatch:
        raise BrowserError(
            403,
            "Wrong Tailscale account",
            "You approved with a different Tailscale account than the one expected for this "
            "request, so nothing was handed out. Ask whoever sent the link for a new one, and "
            "approve it signed in to Tailscale as the person the device is for.",
        )
    async with context.sessions() as session:
        return await load_request(session, consumed.request_id)


async def _store_outcome(context: AppContext, consumed: ConsumedFlow, token: TokenGrant) -> bool:
    """Store the grant, or refuse it when the identity is known to differ; True on mismatch."""
    key_ring = context.require_key_ring()
    async with transaction(context.sessions) as session:
        request = await load_request(session, consumed.request_id, lock=True)
        if request.status != "awaiting_consent":
            raise BrowserError(
                409, "Request no longer waiting", "This request was cancelled or completed."
            )
        user = await find_user(session, request.user_id)
        expected = user.tailscale_login if user else None
        actor = user_actor(request.user_id, token.login_name or expected)
        if expected and token.login_name and token.login_name.lower() != expected.lower():
            await _refuse_identity(session, request, actor, token.login_name, expected)
            return True
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
    return False


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
