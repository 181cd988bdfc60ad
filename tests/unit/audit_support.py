"""Appending chained audit events at chosen times, exactly as the service hashes them."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import (
    AUDIT_CHAIN_LOCK,
    GENESIS_HASH,
    Actor,
    Target,
    chain_hash,
    event_content,
)
from service.models import AuditCheckpoint, AuditEvent

CALLER = Actor(id="c-1", type="OAUTH_CLIENT", login_name="devbox", display_name="devbox")
OTHER_CALLER = Actor(id="c-2", type="OAUTH_CLIENT", login_name="ci-runner")


async def _head(session: AsyncSession) -> bytes:
    last = await session.scalar(select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1))
    if last is not None:
        return last
    checkpoint = await session.scalar(
        select(AuditCheckpoint.last_hash).order_by(AuditCheckpoint.id.desc()).limit(1)
    )
    return checkpoint or GENESIS_HASH


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
    """A chained event with a chosen ``eventTime`` (the service always stamps "now")."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_CHAIN_LOCK})
    target = target or Target(id=str(uuid.uuid4()), name=user_id or "", type="PROVISIONING_REQUEST")
    event = AuditEvent(
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
        prev_hash=await _head(session),
    )
    event.hash = chain_hash(event.prev_hash, event_content(event))
    session.add(event)
    await session.flush()
    return event


# tailscale.md's ConfigurationAuditLog table, plus tsprov's id, userId and chain fields.
TAILSCALE_FIELDS = {
    "eventTime", "type", "deferredAt", "eventGroupID", "origin", "actor", "target", "action",
    "old", "new", "actionDetails", "error",
}  # fmt: skip
TSPROV_FIELDS = {"id", "userId", "prevHash", "hash", "requestId"}
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
    assert re.fullmatch(r"[0-9a-f]{64}", log["hash"])
    assert re.fullmatch(r"[0-9a-f]{64}", log["prevHash"])
