"""``Idempotency-Key`` for callers: replay the first answer, refuse a different body.

The key is reserved in its own committed transaction first, so a twin arriving while the
first is in flight sees the reservation (409) instead of doing the work again. The answer is
sealed (a claim's answer is an auth key) and wiped after its replay window.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.crypto.digests import lookup_digest
from service.crypto.keyring import KeyRing
from service.crypto.sealed import idempotency_response_context
from service.db import rows_changed, transaction
from service.models import IdempotencyRecord
from service.state import AppContext
from service.web.errors import AlreadyClaimed, IdempotencyConflict, IdempotencyInFlight

RECORD_LIFETIME = timedelta(hours=24)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


Operation = Callable[[], Awaitable[Answer]]


def fingerprint(route: str, body: Any) -> bytes:
    canonical = json.dumps([route, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).digest()


@dataclass(frozen=True)
class Reservation:
    """A key this call holds; ``lease`` (the row's created_at) proves it still holds it."""

    record_id: uuid.UUID
    lease: datetime


async def run_idempotent(
    context: AppContext,
    key_ring: KeyRing,
    caller_id: uuid.UUID,
    key: str | None,
    request_hash: Callable[[], bytes],
    operation: Operation,
    *,
    replay_window: timedelta | None = None,
) -> Answer:
    """Run ``operation`` once per (caller, key); later calls replay its answer.

    ``request_hash`` (see ``fingerprint``) is computed only when a key came: most calls
    bring none, and hashing a create's body cost about 1 % of a pair's CPU.

    The key is reserved in its own committed transaction before ``operation`` runs, so a
    twin arriving meanwhile finds it in flight; the answer is stored in another afterwards.
    """
    if key is None:
        return await operation()
    held = await _reserve(context, key_ring, caller_id, lookup_digest(key), request_hash())
    if isinstance(held, Answer):
        return held
    try:
        answer = await operation()
    except BaseException:
        async with transaction(context.sessions) as session:
            await session.execute(delete(IdempotencyRecord).where(*_still_held(held)))
        raise
    sealed = key_ring.encrypt(
        json.dumps(answer.body, default=str).encode(),
        idempotency_response_context(held.record_id, caller_id),
    )
    wipe_at = datetime.now(UTC) + replay_window if replay_window is not None else None
    async with transaction(context.sessions) as session:
        await session.execute(
            update(IdempotencyRecord)
            .where(*_still_held(held))
            .values(response_status=answer.status, response_ciphertext=sealed, wipe_at=wipe_at)
        )
    return answer


def _still_held(held: Reservation) -> tuple[ColumnElement[bool], ...]:
    # A call that outlived its lease lost the row to a retry: it must not answer for it.
    return (IdempotencyRecord.id == held.record_id, IdempotencyRecord.created_at == held.lease)


async def _take_over_stale(
    session: AsyncSession, record: IdempotencyRecord, lease: timedelta
) -> Reservation | None:
    """A reservation older than its lease was left by a process that died: reuse it."""
    now = datetime.now(UTC)
    if record.created_at > now - lease:
        return None
    taken = await session.scalar(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.id == record.id,
            IdempotencyRecord.response_status.is_(None),
            IdempotencyRecord.created_at == record.created_at,
        )
        .values(created_at=now)
        .returning(IdempotencyRecord.id)
    )
    return Reservation(record.id, now) if taken is not None else None


async def _reserve(
    context: AppContext,
    key_ring: KeyRing,
    caller_id: uuid.UUID,
    key_hash: bytes,
    request_hash: bytes,
) -> Reservation | Answer:
    now = datetime.now(UTC)
    async with transaction(context.sessions) as session:
        values = {"caller_id": caller_id, "key_hash": key_hash, "request_hash": request_hash}
        record_id: uuid.UUID | None = await session.scalar(
            insert(IdempotencyRecord)
            .values(id=uuid.uuid4(), created_at=now, expires_at=now + RECORD_LIFETIME, **values)
            .on_conflict_do_nothing()
            .returning(IdempotencyRecord.id)
        )
        if record_id is not None:
            return Reservation(record_id, now)
        existing = await session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.caller_id == caller_id, IdempotencyRecord.key_hash == key_hash
            )
        )
        if existing is None:  # expired and purged between the two statements
            raise IdempotencyInFlight("Retry the request.")
        if existing.expires_at <= now:
            # Expired, whatever the purge job has reached: the key starts afresh.
            return await _replace_expired(session, existing, now, request_hash)
        if existing.request_hash != request_hash:
            raise IdempotencyConflict("This Idempotency-Key was used with a different request.")
        if existing.response_status is None:
            taken = await _take_over_stale(session, existing, context.settings.operation_lease)
            if taken is not None:
                return taken
            raise IdempotencyInFlight("A request with this Idempotency-Key is still in flight.")
    return _replay(key_ring, existing)


async def _replace_expired(
    session: AsyncSession, record: IdempotencyRecord, now: datetime, request_hash: bytes
) -> Reservation:
    """Take over an expired record as a fresh reservation; a twin doing the same loses."""
    taken = await session.scalar(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record.id, IdempotencyRecord.expires_at <= now)
        .values(
            created_at=now,
            expires_at=now + RECORD_LIFETIME,
            request_hash=request_hash,
            response_status=None,
            response_ciphertext=None,
            wipe_at=None,
        )
        .returning(IdempotencyRecord.id)
    )
    if taken is None:
        raise IdempotencyInFlight("A request with this Idempotency-Key is still in flight.")
    return Reservation(record.id, now)


def _replay(key_ring: KeyRing, record: IdempotencyRecord) -> Answer:
    """The stored answer of a finished request, opened again, unless its window has passed."""
    wiped = record.wipe_at is not None and record.wipe_at <= datetime.now(UTC)
    # Past the replay window the answer (a claim's auth key) is gone, whether or not the
    # purge job has wiped the column yet.
    if wiped or record.response_ciphertext is None or record.response_status is None:
        raise AlreadyClaimed("The answer to this request is no longer held; it was claimed.")
    context = idempotency_response_context(record.id, record.caller_id)
    body = json.loads(key_ring.decrypt(record.response_ciphertext, context))
    return Answer(record.response_status, body)


async def purge_idempotency_records(session: AsyncSession) -> int:
    """Expired records, and claim answers past their replay window (the key inside is wiped)."""
    now = datetime.now(UTC)
    records = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < now)
    )
    wiped = await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.wipe_at < now, IdempotencyRecord.response_ciphertext.is_not(None))
        .values(response_ciphertext=None)
    )
    return rows_changed(records) + rows_changed(wiped)
