"""ensure_user under concurrent first use: the one-statement upsert and its fallback."""

from __future__ import annotations

import asyncio
import time
import uuid

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service.audit.events import ORIGIN_API, Actor
from service.models import AuditEvent
from service.users.store import ensure_user

ACTOR = Actor(id="upsert-test", type="USER", login_name="upsert-test")


async def _wait_until_blocked(engine: AsyncEngine, deadline_seconds: float = 10.0) -> None:
    """Until some backend waits on a lock: the upsert queued behind the uncommitted row."""
    give_up = time.monotonic() + deadline_seconds
    async with engine.connect() as watcher:
        while time.monotonic() < give_up:
            waiting = await watcher.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
            )
            await watcher.rollback()
            if waiting:
                return
            await asyncio.sleep(0.02)
    raise AssertionError("the upsert never waited for the other transaction's row")


async def test_a_user_first_inserted_by_another_transaction_is_found_not_created(
    engine: AsyncEngine,
) -> None:
    user_id = f"race-{uuid.uuid4().hex[:10]}"
    async with engine.connect() as other:
        await other.execute(
            text("INSERT INTO user_account (id, user_id) VALUES (:id, :user_id)"),
            {"id": uuid.uuid4(), "user_id": user_id},
        )
        async with AsyncSession(engine) as session:
            upsert = asyncio.create_task(ensure_user(session, ACTOR, user_id, origin=ORIGIN_API))
            await _wait_until_blocked(engine)
            await other.commit()
            user = await upsert
            assert user.user_id == user_id
            created = await session.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.user_id == user_id)
            )
            assert created == 0  # the other transaction created the user, not this one
            await session.rollback()


async def test_a_new_user_is_created_and_audited_once(engine: AsyncEngine) -> None:
    user_id = f"new-{uuid.uuid4().hex[:10]}"
    async with AsyncSession(engine) as session:
        first = await ensure_user(session, ACTOR, user_id, origin=ORIGIN_API)
        again = await ensure_user(session, ACTOR, user_id, origin=ORIGIN_API)
        assert first.id == again.id
        created = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.user_id == user_id)
        )
        assert created == 1
        await session.rollback()
