"""Events in the shape of Tailscale's configuration audit log, appended to a hash chain.

Each event's ``hash`` is SHA-256 over the previous event's hash and the RFC 8785 canonical
JSON of its content. Appends take a transaction-scoped advisory lock, so the chain is a
single line even with many replicas, and the event commits (or rolls back) together with
the change it records.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import rfc8785
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.safe_text import escape_invisible
from service.models import AuditCheckpoint, AuditEvent

GENESIS_HASH = bytes(32)
ZERO_TIME = "0001-01-01T00:00:00Z"
# Any constant works; it only has to be the same in every process.
AUDIT_CHAIN_LOCK = 0x7473_7072_6F76_0001

ORIGIN_API = "CONFIG_API"
ORIGIN_BROWSER = "IDENTITY_PROVIDER"
ORIGIN_BACKGROUND = "CONTROL"

_event_group: ContextVar[str | None] = ContextVar("audit_event_group", default=None)


@contextmanager
def event_group() -> Iterator[str]:
    """Every event recorded inside shares one ``eventGroupID``, as in one Tailscale operation."""
    group = str(uuid.uuid4())
    token = _event_group.set(group)
    try:
        yield group
    finally:
        _event_group.reset(token)


@dataclass(frozen=True)
class Actor:
    """Who did it: ``{id, type, loginName, displayName, tags}``."""

    id: str
    type: str
    login_name: str
    display_name: str = ""
    tags: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "loginName": self.login_name,
            "displayName": self.display_name or self.login_name,
            "tags": list(self.tags),
        }


@dataclass(frozen=True)
class Target:
    """What it was done to: ``{id, name, type, isEphemeral, property}``."""

    id: str
    name: str
    type: str
    property: str = ""
    is_ephemeral: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "isEphemeral": self.is_ephemeral,
            "property": self.property,
        }


ANONYMOUS = Actor(id="", type="OAUTH_CLIENT", login_name="anonymous", display_name="anonymous")
WORKER = Actor(id="tsprov", type="AUTOMATED_WORKER", login_name="tsprov", display_name="tsprov")


def caller_actor(caller_id: uuid.UUID | str, name: str) -> Actor:
    return Actor(id=str(caller_id), type="OAUTH_CLIENT", login_name=name, display_name=name)


def user_actor(user_id: str, login_name: str | None) -> Actor:
    return Actor(id=user_id, type="USER", login_name=login_name or user_id)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC, always with microseconds: fixed width, so text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_optional_time(moment: datetime | None) -> str | None:
    return format_time(moment) if moment is not None else None


def event_json(event: AuditEvent) -> dict[str, Any]:
    """The event as Tailscale's ConfigurationAuditLog shape, plus its chain fields."""
    body = event_content(event)
    body["hash"] = event.hash.hex()
    return body


def event_content(event: AuditEvent) -> dict[str, Any]:
    """What the hash covers: every field a reader sees, except the hash itself."""
    return content_of({name: getattr(event, name) for name in CONTENT_COLUMNS})


# The audit_event columns the hash covers; readers that skip the ORM select exactly these.
CONTENT_COLUMNS = (
    "id",
    "event_time",
    "event_group_id",
    "origin",
    "actor",
    "target",
    "action",
    "old",
    "new",
    "action_details",
    "error",
    "user_id",
    "prev_hash",
)


def content_of(values: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed content from column values (an ORM event, a row mapping, a benchmark dict)."""
    return {
        "id": str(values["id"]),
        "eventTime": format_time(values["event_time"]),
        "type": "CONFIG",
        "deferredAt": ZERO_TIME,
        "eventGroupID": values["event_group_id"],
        "origin": values["origin"],
        "actor": values["actor"],
        "target": values["target"],
        "action": values["action"],
        "old": values["old"],
        "new": values["new"],
        "actionDetails": values["action_details"],
        "error": values["error"],
        "userId": values["user_id"],
        "prevHash": values["prev_hash"].hex(),
    }


def chain_hash(prev_hash: bytes, content: dict[str, Any]) -> bytes:
    return hashlib.sha256(prev_hash + rfc8785.dumps(content)).digest()


async def _chain_head(session: AsyncSession) -> tuple[bytes, datetime | None]:
    """The hash to link to, and the time of the event that carries it (if still kept)."""
    last = (
        await session.execute(
            select(AuditEvent.hash, AuditEvent.event_time).order_by(AuditEvent.seq.desc()).limit(1)
        )
    ).first()
    if last is not None:
        return last.hash, last.event_time
    checkpoint = await session.scalar(
        select(AuditCheckpoint.last_hash).order_by(AuditCheckpoint.id.desc()).limit(1)
    )
    return (checkpoint if checkpoint is not None else GENESIS_HASH), None


async def record_event(
    session: AsyncSession,
    *,
    origin: str,
    actor: Actor,
    target: Target,
    action: str,
    old: Any = None,
    new: Any = None,
    details: str = "",
    error: str = "",
    user_id: str | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction; it commits with the change it records."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_CHAIN_LOCK})
    prev_hash, prev_time = await _chain_head(session)
    now = datetime.now(UTC)
    event = AuditEvent(
        id=uuid.uuid4(),
        # Replicas' clocks differ; never going backwards keeps time order equal to chain
        # order, so a reader paging by time cannot skip an event committed after its cursor.
        event_time=max(now, prev_time) if prev_time is not None else now,
        event_group_id=_event_group.get() or str(uuid.uuid4()),
        origin=origin,
        actor=actor.as_json(),
        target=target.as_json(),
        action=action,
        event_name=f"{target.type}.{action}",
        old=old,
        new=new,
        action_details=details,
        error=error,
        user_id=user_id,
        prev_hash=prev_hash,
    )
    event.hash = chain_hash(event.prev_hash, event_content(event))
    session.add(event)
    await session.flush()
    return event


HTTP_ACTIONS = {"GET": "READ", "POST": "CREATE", "PUT": "UPDATE", "PATCH": "UPDATE"}


async def record_refused_attempt(
    sessions: async_sessionmaker[AsyncSession],
    *,
    actor: Actor,
    method: str,
    path: str,
    error: str,
    user_id: str | None = None,
    origin: str = ORIGIN_API,
    details: str = "",
    new: Any = None,
) -> None:
    """A refusal is an event of its own, committed whatever happens to the request.

    ``details`` and ``new`` say how many refusals one event stands for, when folded.
    """
    target = Target(id="", name=_storable(f"{method} {path}", 512), type="FAILED_REQUEST")
    action = HTTP_ACTIONS.get(method, method)
    if user_id is not None:
        user_id = _storable(user_id, 128)
    async with sessions() as session, session.begin():
        await record_event(
            session,
            origin=origin,
            actor=actor,
            target=target,
            action=action,
            new=new,
            details=_storable(details, 1024),
            error=_storable(error, 1024),
            user_id=user_id,
        )


def _storable(value: str, limit: int) -> str:
    # Refusals echo what an unauthenticated client sent; JSONB rejects NUL, the column
    # lengths are bounded, and control or bidi characters must not reach a reader raw.
    return escape_invisible(value)[:limit]
