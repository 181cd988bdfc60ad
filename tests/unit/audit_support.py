"""Recording audit events at chosen times, and sealing them as the background job does."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import Actor, Target
from service.audit.sealer import SealRound, seal_audit_events
from service.audit.signing import AuditSigner
from service.models import AuditEvent

CALLER = Actor(id="c-1", type="OAUTH_CLIENT", login_name="devbox", display_name="devbox")
OTHER_CALLER = Actor(id="c-2", type="OAUTH_CLIENT", login_name="ci-runner")


async def append_at(
    session: AsyncSession,
    at: datetime,
    *,
    actor: Actor = CALLER,
    target: Target | None = None,
    action: str = "CREATE",
    user_id: str | None = None,
    old: Any = None,
    new: Any = None,
) -> AuditEvent:
    """An event with a chosen ``eventTime`` (the service always stamps "now")."""
    target = target or Target(id=str(uuid.uuid4()), name=user_id or "", type="PROVISIONING_REQUEST")
    statement = (
        insert(AuditEvent)
        .values(
            id=uuid.uuid4(),
            event_time=at,
            event_group_id=str(uuid.uuid4()),
            origin="CONFIG_API",
            actor=actor.as_json(),
            target=target.as_json(),
            action=action,
            event_name=f"{target.type}.{action}",
            old=old,
            new=new,
            action_details="",
            error="",
            user_id=user_id,
        )
        .returning(AuditEvent)
    )
    return (await session.execute(statement)).scalar_one()


OLDER_TRANSACTIONS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND age(backend_xid) > age(xid(pg_current_xact_id()))"
)


async def let_this_test_seal(session: AsyncSession) -> None:
    """Let the sealer take the events of this test's own transaction.

    A test's writes share its one outer transaction, which never commits. The sealer may
    seal that transaction's own events, but only once the snapshot's xmax is past its id,
    which happens as soon as any later transaction ends (on a live server one always does
    soon): end one.
    """
    connection = await session.connection()
    async with connection.engine.connect() as elsewhere:
        await elsewhere.execute(text("SELECT pg_current_xact_id()"))
        await elsewhere.commit()
    # The sealer also waits, rightly, for any older transaction in this database (an
    # autovacuum ANALYZE takes one now and then); wait for it too, briefly.
    for _ in range(100):
        await session.execute(text("SELECT pg_stat_clear_snapshot()"))
        if not await session.scalar(OLDER_TRANSACTIONS):
            return
        await asyncio.sleep(0.05)


async def seal_now(session: AsyncSession, signer: AuditSigner | None = None) -> SealRound:
    """Seal what this test recorded, as the background job does once its writers end."""
    await let_this_test_seal(session)
    return await seal_audit_events(session, signer)


# tailscale.md's ConfigurationAuditLog table, plus tsprov's id, userId and chain fields.
TAILSCALE_FIELDS = {
    "eventTime", "type", "deferredAt", "eventGroupID", "origin", "actor", "target", "action",
    "old", "new", "actionDetails", "error",
}  # fmt: skip
TSPROV_FIELDS = {"id", "userId", "eventName", "prevHash", "hash", "requestId"}
ACTOR_FIELDS = {"id", "type", "loginName", "displayName", "tags"}
TARGET_FIELDS = {"id", "name", "type", "isEphemeral", "property"}
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def assert_tailscale_shape(log: dict[str, Any]) -> None:
    """One event as tailscale.md describes ConfigurationAuditLog."""
    assert set(log) - {"upstreamEventGroupID"} == TAILSCALE_FIELDS | TSPROV_FIELDS
    assert RFC3339_UTC.match(log["eventTime"]), log["eventTime"]
    assert datetime.fromisoformat(log["eventTime"]).tzinfo is not None
    assert log["type"] == "CONFIG"
    assert log["deferredAt"] == "0001-01-01T00:00:00Z"
    assert isinstance(log["eventGroupID"], str)
    assert log["eventGroupID"]
    assert set(log["actor"]) == ACTOR_FIELDS
    assert isinstance(log["actor"]["tags"], list)
    assert set(log["target"]) == TARGET_FIELDS
    assert isinstance(log["target"]["isEphemeral"], bool)
    assert isinstance(log["actionDetails"], str)
    assert isinstance(log["error"], str)
    assert log["eventName"] == f"{log['target']['type']}.{log['action']}"
    # Sealed: both chain fields are hashes; not sealed yet: both are null.
    if log["hash"] is None:
        assert log["prevHash"] is None
    else:
        assert re.fullmatch(r"[0-9a-f]{64}", log["hash"])
        assert re.fullmatch(r"[0-9a-f]{64}", log["prevHash"])
