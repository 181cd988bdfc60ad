"""What a consent by the wrong Tailscale login leaves behind, torn down.

The grant is revoked and its secrets wiped; every other live grant of the user goes with it,
and every open request goes back to awaiting consent with a fresh link, since the link that
was misused may not be the only one that travelled. The key and any device that joined with
it are deleted at Tailscale where a credential allows. The audit names both logins and no
secret.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import Actor, Target, record_event
from service.crypto.keyring import KeyRing
from service.db import transaction
from service.grants.status import GrantStatus
from service.grants.store import lock_live_grants, set_grant_status
from service.models import ConsentGrant, ProvisioningRequest
from service.provisioning.create import DEFAULT_CONSENT_TTL_SECONDS, issue_consent_link
from service.provisioning.status import RequestStatus
from service.provisioning.store import lock_open_requests
from service.provisioning.transitions import change_status, record_request_failure
from service.state import AppContext
from service.tailscale.client import TailscaleError

log = logging.getLogger("tsprov.identity")
IDENTITY_MISMATCH = "identity_mismatch"
IDENTITY_UNVERIFIED = "identity_unverified"


def mismatch_error(got: str, expected: str) -> str:
    return f"consenting identity {got!r} is not the expected {expected!r}"


async def fail_for_identity(
    session: AsyncSession,
    request: ProvisioningRequest,
    *,
    reason: str,
    error: str,
    actor: Actor,
    origin: str,
) -> None:
    """The request ends ``failed``: a FAILED_REQUEST event says why, the status move names it."""
    request.failure_reason = reason
    request.mint_started_at = None
    await record_request_failure(session, request, actor=actor, origin=origin, error=error)
    await change_status(
        session, request, RequestStatus.FAILED, actor=actor, origin=origin, error=reason
    )


async def lock_user_rows(
    session: AsyncSession, user_id: str
) -> tuple[list[ProvisioningRequest], list[ConsentGrant]]:
    """The user's open requests and live grants, locked, requests first as claims take them.

    Taken before the first audit append, as the chain lock must never be held while waiting
    for a row; locking them again later in the same transaction does not wait.
    """
    return await lock_open_requests(session, user_id), await lock_live_grants(session, user_id)


async def tear_down_mismatch(
    session: AsyncSession,
    key_ring: KeyRing,
    *,
    request: ProvisioningRequest,
    grant: ConsentGrant | None,
    error: str,
    actor: Actor,
    origin: str,
) -> None:
    """Fail ``request`` (held locked), revoke and wipe the user's grants, renew their links."""
    requests, grants = await lock_user_rows(session, request.user_id)
    others = [other for other in requests if other.id != request.id]
    if grant is not None and grant.status != GrantStatus.REVOKED and grant not in grants:
        grants.append(grant)
    await fail_for_identity(
        session, request, reason=IDENTITY_MISMATCH, error=error, actor=actor, origin=origin
    )
    for other in others:
        other.grant_id = None
        other.mint_started_at = None
        issue_consent_link(other, key_ring, DEFAULT_CONSENT_TTL_SECONDS)
        await change_status(
            session,
            other,
            RequestStatus.AWAITING_CONSENT,
            actor=actor,
            origin=origin,
            details="a consent by another Tailscale login revoked the user's grants; "
            "this request has a fresh consent link",
        )
    for revoked in grants:
        await set_grant_status(
            session,
            revoked,
            GrantStatus.REVOKED,
            actor=actor,
            origin=origin,
            action="REVOKE",
            error=f"{IDENTITY_MISMATCH}: {error}",
        )


@dataclass(frozen=True)
class Deletion:
    target: Target
    done: bool
    note: str


async def delete_upstream(
    context: AppContext,
    *,
    user_id: str,
    key_id: str,
    node_ids: Sequence[str] = (),
    access_token: SecretStr | None = None,
) -> list[Deletion]:
    """Delete the key and its devices at Tailscale where a credential allows; never raises."""
    deletions = []
    if key_id:
        done, note = await _delete_key(context, key_id, access_token)
        deletions.append(Deletion(Target(id=key_id, name=user_id, type="API_KEY"), done, note))
    for node_id in node_ids:
        done, note = await _delete_device(context, node_id)
        deletions.append(Deletion(Target(id=node_id, name=user_id, type="NODE"), done, note))
    return deletions


async def audit_deletions(
    session: AsyncSession,
    deletions: Sequence[Deletion],
    *,
    actor: Actor,
    origin: str,
    why: str = "after an identity mismatch",
) -> None:
    for deletion in deletions:
        note = deletion.note
        await record_event(
            session,
            origin=origin,
            actor=actor,
            target=deletion.target,
            action="DELETE",
            details=f"{why}: {note}" if deletion.done else "",
            error="" if deletion.done else f"not deleted {why}: {note}",
            user_id=deletion.target.name,
        )


async def delete_leftovers(
    context: AppContext,
    *,
    user_id: str,
    key_id: str,
    access_token: SecretStr | None = None,
    actor: Actor,
    origin: str,
) -> None:
    """A refused key deleted at Tailscale where possible, audited in its own transaction."""
    deletions = await delete_upstream(
        context, user_id=user_id, key_id=key_id, access_token=access_token
    )
    async with transaction(context.sessions) as session:
        await audit_deletions(session, deletions, actor=actor, origin=origin)


async def _delete_key(
    context: AppContext, key_id: str, access_token: SecretStr | None
) -> tuple[bool, str]:
    client = context.tailscale
    if access_token is not None:
        try:
            await client.delete_key(key_id, access_token)
            return True, "deleted at Tailscale with the grant's token"
        except TailscaleError as exc:
            log.info("the grant's token could not delete key %s: %s", key_id, exc.code)
    if not client.has_observer:
        return False, "no credential may delete it; it expires at Tailscale on its own"
    try:
        await client.delete_key(key_id)
    except TailscaleError as exc:
        return False, f"the observer could not delete it ({exc.code}); it expires on its own"
    return True, "deleted at Tailscale by the observer"


async def _delete_device(context: AppContext, node_id: str) -> tuple[bool, str]:
    if not context.tailscale.has_observer:
        return False, "no observer credential may delete it"
    try:
        await context.tailscale.delete_device(node_id)
    except TailscaleError as exc:
        return False, f"the observer could not delete it ({exc.code})"
    return True, "deleted at Tailscale by the observer"
