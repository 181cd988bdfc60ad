"""Events in the shape of Tailscale's configuration audit log, recorded without a lock.

An event is one INSERT in the caller's transaction, so it commits (or rolls back) together
with the change it records, and no writer ever waits for another. The sealer
(``service.audit.sealer``) links committed events into the hash chain afterwards: each
sealed event's ``hash`` is SHA-256 over the previous hash and the RFC 8785 canonical JSON
of its content (every field a reader sees, ``eventName`` included).
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.canonical import canonical_json
from service.audit.safe_text import escape_invisible

# The chain's names, re-exported for the modules that hash and read events.
from service.audit.store import CONTENT_COLUMNS as CONTENT_COLUMNS
from service.audit.store import GENESIS_HASH as GENESIS_HASH
from service.audit.store import Along, RecordedEvent, insert_events
from service.models import AuditEvent
from service.ops.request_id import current_request_id

ZERO_TIME = "0001-01-01T00:00:00Z"

ORIGIN_API = "CONFIG_API"
ORIGIN_BROWSER = "IDENTITY_PROVIDER"
ORIGIN_BACKGROUND = "CONTROL"
# An operator's own hand: the CLI on the server, or the /console pages (as Tailscale's
# admin console is for its own log).
ORIGIN_CONSOLE = "ADMIN_CONSOLE"

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


def event_json(
    event: AuditEvent | RecordedEvent, seal: tuple[bytes, bytes] | None = None
) -> dict[str, Any]:
    """The event as Tailscale's ConfigurationAuditLog shape, plus its chain fields.

    ``seal`` is ``(prev_hash, hash)`` once the sealer has linked the event; until then both
    fields are null, and the event is shown all the same.
    """
    body = event_content(event)
    body["prevHash"] = seal[0].hex() if seal is not None else None
    body["hash"] = seal[1].hex() if seal is not None else None
    body["requestId"] = event.request_id
    return body


def event_content(event: AuditEvent | RecordedEvent) -> dict[str, Any]:
    """What the hash covers: every field a reader sees, except the chain fields."""
    return content_of({name: getattr(event, name) for name in CONTENT_COLUMNS})


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
        # Readers filter on it, so it is covered too: a renamed event would hide from them.
        "eventName": values["event_name"],
        "old": values["old"],
        "new": values["new"],
        "actionDetails": values["action_details"],
        "error": values["error"],
        "userId": values["user_id"],
    }


# RFC 8785 writes numbers as IEEE doubles: an integer beyond 2**53 has no exact form, nor
# has a NaN or an infinity, and the canonical writer refuses them (a large float too, as
# JSONB gives it back as an integer). One such value in an
# event would stop the sealer at that event for good, so it is recorded as its text.
_LARGEST_EXACT_INTEGER = 2**53 - 1


def sealable(value: Any) -> Any:
    """``value`` with every number RFC 8785 cannot write exactly turned into its text."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if abs(value) <= _LARGEST_EXACT_INTEGER else str(value)
    if isinstance(value, float):
        # JSONB keeps a float as a decimal: 1e16 reads back as an integer past 2**53.
        exact = math.isfinite(value) and abs(value) <= _LARGEST_EXACT_INTEGER
        return value if exact else str(value)
    if isinstance(value, Mapping):
        return {key: sealable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [sealable(item) for item in value]
    return value


def canonical_content(values: Mapping[str, Any]) -> bytes:
    """RFC 8785 JSON of the content: what anyone can recompute from an exported event."""
    return canonical_json(content_of(values))


def chain_hash(prev_hash: bytes, canonical: bytes) -> bytes:
    return hashlib.sha256(prev_hash + canonical).digest()


@dataclass(frozen=True)
class Event:
    """One event to record: what happened, by whom, to what."""

    origin: str
    actor: Actor
    target: Target
    action: str
    old: Any = None
    new: Any = None
    details: str = ""
    error: str = ""
    user_id: str | None = None

    def columns(self) -> dict[str, Any]:
        return {
            "event_group_id": _event_group.get() or str(uuid.uuid4()),
            "origin": self.origin,
            "actor": self.actor.as_json(),
            "target": self.target.as_json(),
            "action": self.action,
            "event_name": f"{self.target.type}.{self.action}",
            "old": sealable(self.old),
            "new": sealable(self.new),
            "action_details": self.details,
            "error": self.error,
            "user_id": self.user_id,
            "request_id": current_request_id(),
        }


async def record_events(
    session: AsyncSession, *events: Event, along: Along | None = None
) -> list[RecordedEvent]:
    """Record events in the caller's transaction, in this order; they commit with the change
    they record, which ``along`` may carry into the same statement.

    No lock and one statement. Replicas' clocks differ: the time never goes back behind the
    newest event already committed, which keeps time order close to chain order.
    """
    columns = [event.columns() for event in events]
    return await insert_events(session, datetime.now(UTC), columns, along)


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
) -> RecordedEvent:
    """Record one event in the caller's transaction (see ``record_events``)."""
    event = Event(origin, actor, target, action, old, new, details, error, user_id)
    (recorded,) = await record_events(session, event)
    return recorded


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
