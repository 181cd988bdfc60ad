"""What a consent callback does once its flow is consumed: exchange, bind, store, audit."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ORIGIN_BROWSER, Actor, Target, record_event, user_actor
from service.consent.drops import (
    UNKNOWN_LOGIN,
    Dropped,
    closed_for_consent,
    refuse_if_closed,
    revoke_dropped,
)
from service.consent.flow import ConsumedFlow
from service.consent.identity import (
    ConsentingIdentity,
    Finding,
    Verdict,
    consenting_identity,
    verdict,
)
from service.consent.mismatch import (
    IDENTITY_MISMATCH,
    IDENTITY_UNVERIFIED,
    delete_leftovers,
    fail_for_identity,
    mismatch_error,
    tear_down_mismatch,
)
from service.crypto.keyring import KeyRing
from service.db import transaction
from service.grants.status import GrantMode
from service.grants.store import auth_key_id, grant_mode, mark_identity_verified, store_grant
from service.models import ProvisioningRequest
from service.provisioning.status import RequestStatus
from service.provisioning.store import load_request
from service.provisioning.transitions import change_status
from service.settings import IdentityBinding
from service.state import AppContext
from service.tailscale.client import TailscaleError, TokenGrant
from service.users.store import find_user
from service.web.errors import BrowserError

log = logging.getLogger("tsprov.consent")
RETRY_MESSAGE = "Tailscale could not complete the sign-in. Please open the consent link again."
NO_EXPECTED_LOGIN = Finding(
    "expected login", None, "the user has no tailscale_login and no TSPROV_LOGIN_TEMPLATE"
)
REFUSAL_PAGES = {
    IDENTITY_MISMATCH: (
        "Wrong Tailscale account",
        "You approved with a different Tailscale account than the one expected for this "
        "request, so nothing was handed out. Ask whoever sent the link for a new one, and "
        "approve it signed in to Tailscale as the person the device is for.",
    ),
    IDENTITY_UNVERIFIED: (
        "Tailscale account not confirmed",
        "tsprov could not confirm which Tailscale account approved, so nothing was handed "
        "out. The service that sent you here can see why.",
    ),
}


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


@dataclass(frozen=True)
class Judged:
    """What the identity sources said about a consent, before anything is stored."""

    binding: IdentityBinding
    expected: str | None
    identity: ConsentingIdentity
    verdict: Verdict
    key_id: str
    one_time: bool

    @property
    def refused(self) -> str:
        """The failure reason when nothing may be stored, else ''."""
        if self.binding == IdentityBinding.OFF:
            return ""
        if self.verdict == Verdict.MISMATCH:
            return IDENTITY_MISMATCH
        # A reusable grant has no key yet: its first minted key is checked at claim.
        unconfirmed = self.verdict == Verdict.UNVERIFIED and self.one_time
        if unconfirmed and self.binding == IdentityBinding.BEFORE_HANDOUT:
            return IDENTITY_UNVERIFIED
        return ""


async def finish_consent(
    context: AppContext, consumed: ConsumedFlow, code: str
) -> ProvisioningRequest:
    """Exchange the code, check who consented, keep the grant sealed, make the request ready.

    Takes the app state: the flow was consumed and committed before this runs (so a twin
    callback never exchanges twice), and the outcome is stored in a transaction of its own
    after the upstream call, never holding a row lock across it. A token that is not kept
    (a refused identity, a request that closed meanwhile) is dropped and revoked.
    """
    await refuse_if_closed(context, consumed)
    try:
        token = await context.tailscale.exchange_code(
            code=code, code_verifier=consumed.verifier, redirect_uri=context.settings.redirect_uri
        )
    except TailscaleError as exc:
        log.warning("code exchange failed: %s", exc.code)
        await _record_exchange_failure(context, consumed, exc.code)
        raise BrowserError(502, "Sign-in not completed", RETRY_MESSAGE) from exc
    judged = await judge_consent(context, consumed.request_id, token)
    user_id, closed = await _store_outcome(context, consumed, token, judged)
    if closed is not None:
        await revoke_dropped(context, consumed, code, token, closed.name.lower())
        raise closed.page()
    if judged.refused:
        await delete_leftovers(
            context,
            user_id=user_id,
            key_id=judged.key_id,
            actor=user_actor(user_id, judged.identity.login or UNKNOWN_LOGIN),
            origin=ORIGIN_BROWSER,
        )
        await revoke_dropped(context, consumed, code, token, judged.refused)
        raise BrowserError(403, *REFUSAL_PAGES[judged.refused])
    async with context.sessions() as session:
        return await load_request(session, consumed.request_id)


async def judge_consent(context: AppContext, request_id: uuid.UUID, token: TokenGrant) -> Judged:
    """Ask the identity sources (outside any transaction: they call Tailscale)."""
    settings = context.settings
    one_time = grant_mode(token, settings.oauth_scope) == GrantMode.ONCE
    key_id = auth_key_id(token.access_token.get_secret_value()) if one_time else ""
    async with context.sessions() as session:
        request = await load_request(session, request_id)
        user = await find_user(session, request.user_id)
    expected = settings.expected_login(request.user_id, user.tailscale_login if user else None)
    identity = ConsentingIdentity(None, unknown=[NO_EXPECTED_LOGIN])
    if settings.binding != IdentityBinding.OFF and expected is not None:
        identity = await consenting_identity(
            settings, context.tailscale, token_login=token.login_name, key_id=key_id
        )
    return Judged(
        settings.binding, expected, identity, verdict(expected, identity), key_id, one_time
    )


async def _store_outcome(
    context: AppContext, consumed: ConsumedFlow, token: TokenGrant, judged: Judged
) -> tuple[str, Dropped | None]:
    """Store the grant and make the request ready, or refuse it; the request's user, and why
    the token is dropped when the request closed meanwhile (the transaction commits)."""
    key_ring = context.require_key_ring()
    async with transaction(context.sessions) as session:
        request = await load_request(session, consumed.request_id, lock=True)
        closed = closed_for_consent(request)
        if closed is not None:
            return request.user_id, closed
        actor = user_actor(request.user_id, judged.identity.login or UNKNOWN_LOGIN)
        if judged.refused:
            await _refuse(session, key_ring, request, actor, judged)
            return request.user_id, None
        grant = await store_grant(
            session,
            key_ring,
            token,
            user_id=request.user_id,
            scope=context.settings.oauth_scope,
            actor=actor,
            origin=ORIGIN_BROWSER,
        )
        if judged.verdict == Verdict.CONFIRMED and judged.identity.login:
            mark_identity_verified(grant, judged.identity.login)
        request.grant_id = grant.id
        request.key_id = judged.key_id or None
        request.key_expires_at = grant.expires_at if grant.mode == GrantMode.ONCE else None
        await change_status(
            session, request, RequestStatus.READY, actor=actor, origin=ORIGIN_BROWSER
        )
    return request.user_id, None


async def _refuse(
    session: AsyncSession,
    key_ring: KeyRing,
    request: ProvisioningRequest,
    actor: Actor,
    judged: Judged,
) -> None:
    """Nothing is stored; a mismatch also revokes what the user held and renews their links."""
    got, expected = judged.identity.login, judged.expected
    if judged.refused == IDENTITY_MISMATCH and got and expected:
        error = mismatch_error(got, expected)
    else:
        error = f"{IDENTITY_UNVERIFIED}: {judged.identity.reasons()}"
    if judged.refused == IDENTITY_MISMATCH:
        await tear_down_mismatch(
            session,
            key_ring,
            request=request,
            grant=None,
            error=error,
            actor=actor,
            origin=ORIGIN_BROWSER,
        )
    else:
        await fail_for_identity(
            session, request, reason=judged.refused, error=error, actor=actor, origin=ORIGIN_BROWSER
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
