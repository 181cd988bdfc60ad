"""The audit trail's previous design, re-implemented for ``audit_append_bench`` to measure
against: a transaction-scoped global advisory lock, the chain head read, the hash computed
(RFC 8785 content with ``prevHash`` inside) and the event inserted, all inside the business
transaction, into ``old_audit_event`` (the event columns plus ``prev_hash`` and ``hash``)."""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import rfc8785
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.events import GENESIS_HASH, WORKER, Target, content_of

OLD_LOCK = 0x7473_7072_6F76_0001  # the old design's chain lock
OLD_HEAD = text("SELECT hash, event_time FROM old_audit_event ORDER BY seq DESC LIMIT 1")
OLD_COLUMNS = (
    "id", "event_time", "event_group_id", "origin", "actor", "target", "action", "event_name",
    "old", "new", "action_details", "error", "user_id", "prev_hash", "hash",
)  # fmt: skip
OLD_INSERT = text(
    f"INSERT INTO old_audit_event ({', '.join(OLD_COLUMNS)}) VALUES "  # noqa: S608 (constants)
    "(:id, :event_time, :event_group_id, :origin, CAST(:actor AS jsonb), "
    "CAST(:target AS jsonb), :action, :event_name, CAST(:old AS jsonb), CAST(:new AS jsonb), "
    ":action_details, :error, :user_id, :prev_hash, :hash)"
)


def old_hash(prev_hash: bytes, values: dict[str, Any]) -> bytes:
    """The old chain: the hash covered prevHash inside the content, under the global lock."""
    content = {**content_of(values), "prevHash": prev_hash.hex()}
    return hashlib.sha256(prev_hash + rfc8785.dumps(content)).digest()


async def append_old(session: AsyncSession, writer: int) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": OLD_LOCK})
    head = (await session.execute(OLD_HEAD)).first()
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": uuid.uuid4(), "event_time": max(now, head.event_time) if head else now,
        "event_group_id": str(uuid.uuid4()), "origin": "CONFIG_API", "actor": WORKER.as_json(),
        "target": Target(str(uuid.uuid4()), f"user{writer}", "PROVISIONING_REQUEST").as_json(),
        "action": "UPDATE", "event_name": "PROVISIONING_REQUEST.UPDATE", "old": "ready",
        "new": "claimed", "action_details": "", "error": "", "user_id": f"user{writer}",
    }  # fmt: skip
    prev = head.hash if head else GENESIS_HASH
    digest = old_hash(prev, values)
    as_json = {
        key: rfc8785.dumps(values[key]).decode() for key in ("actor", "target", "old", "new")
    }
    await session.execute(OLD_INSERT, {**values, **as_json, "prev_hash": prev, "hash": digest})


async def old_verify_rate(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, float]:
    """The old walk: every event rehashed in seq order, its prev_hash linked to the last."""
    columns = ", ".join(OLD_COLUMNS)
    query = text(
        f"SELECT seq, {columns} FROM old_audit_event WHERE seq > :after "  # noqa: S608 (constants)
        "ORDER BY seq LIMIT 2000"
    ).columns(actor=JSONB, target=JSONB, old=JSONB, new=JSONB)
    checked, after, expected = 0, 0, GENESIS_HASH
    started = time.perf_counter()
    async with sessions() as session:
        while rows := (await session.execute(query, {"after": after})).all():
            for row in rows:
                values = row._asdict()
                assert values["prev_hash"] == expected
                assert old_hash(expected, values) == values["hash"]
                expected, after, checked = values["hash"], row.seq, checked + 1
    return checked, checked / (time.perf_counter() - started)
