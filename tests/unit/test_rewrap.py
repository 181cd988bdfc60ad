"""``tsprov keys rewrap`` moves every sealed value, and says when it could not move them all.

Row locks only block other connections, so these tests run on committed data in a database
of their own rather than inside the usual rolled-back transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from service.crypto import rewrap
from service.crypto.keyring import KeyRing, generate_key_entry, key_id_of
from service.crypto.rewrap import RewrapReport, rewrap_all
from service.crypto.sealed import SEALED_COLUMNS
from service.db import transaction
from service.models import (
    ConsentFlow,
    ConsentGrant,
    IdempotencyRecord,
    ProvisioningRequest,
    WebhookEndpoint,
)
from service.settings import Settings
from tests.helpers.sealing import seal_one_of_each
from tests.helpers.stack import migrated_database

REWRAP_DATABASE = "tsprov_rewrap"
SEALED_TABLES = (
    "consent_flow, provisioning_request, consent_grant, idempotency_record, caller, "
    "webhook_endpoint"
)
OLD, NEW = generate_key_entry("old"), generate_key_entry("new")
OLD_RING, ROTATED, NEW_ONLY = KeyRing.parse(OLD), KeyRing.parse(f"{NEW},{OLD}"), KeyRing.parse(NEW)
VALUES_PER_SET = len(SEALED_COLUMNS)
PAUSE = 0.25

Place = tuple[str, str, uuid.UUID]


class Sleeps:
    """Records each pause instead of waiting; ``then`` runs during the first one."""

    def __init__(self, then: Callable[[], Awaitable[None]] | None = None) -> None:
        self.calls: list[float] = []
        self._then = then

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self._then is not None and len(self.calls) == 1:
            await self._then()


@pytest.fixture(scope="module")
def rewrap_database_url(postgres_server: str) -> str:
    url = migrated_database(postgres_server, REWRAP_DATABASE)
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture(scope="module")
async def rewrap_engine(rewrap_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(rewrap_database_url, hide_parameters=True)
    yield engine
    await engine.dispose()


@pytest.fixture
async def committed(rewrap_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    async with rewrap_engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {SEALED_TABLES} CASCADE"))
    return async_sessionmaker(rewrap_engine, expire_on_commit=False, autoflush=False)


async def seal_sets(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, count: int
) -> dict[Place, bytes]:
    """``count`` rows in every sealed column, written by their owners under the old key."""
    for _ in range(count):
        async with transaction(sessions) as session:
            await seal_one_of_each(session, settings, OLD_RING, "rewrap")
    found = await sealed_values(sessions)
    assert len(found) == count * VALUES_PER_SET
    return {place: OLD_RING.decrypt(blob, context) for place, (blob, context) in found.items()}


async def sealed_values(sessions: async_sessionmaker[AsyncSession]) -> dict[Place, Any]:
    found = {}
    async with sessions() as session:
        for column in SEALED_COLUMNS:
            attribute = getattr(column.model, column.attribute)
            for row in await session.scalars(select(column.model).where(attribute.is_not(None))):
                place = (column.model.__tablename__, column.attribute, row.id)
                found[place] = (getattr(row, column.attribute), column.context(row))
    return found


async def key_ids(sessions: async_sessionmaker[AsyncSession]) -> dict[Place, str]:
    return {place: key_id_of(blob) for place, (blob, _) in (await sealed_values(sessions)).items()}


async def opened_with_new_key_only(sessions: async_sessionmaker[AsyncSession]) -> dict[Place, Any]:
    found = await sealed_values(sessions)
    return {place: NEW_ONLY.decrypt(blob, context) for place, (blob, context) in found.items()}


async def lock_a_row(engine: AsyncEngine, model: Any) -> tuple[AsyncConnection, uuid.UUID]:
    """Another process holding one ``model`` row, as the service does mid-refresh or claim."""
    connection = await engine.connect()
    await connection.begin()
    row_id = await connection.scalar(select(model.id).limit(1).with_for_update())
    assert row_id is not None
    return connection, row_id


async def test_rewrap_moves_every_sealed_column_to_the_primary_key(
    committed: async_sessionmaker[AsyncSession],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rewrap, "BATCH", 2)  # three rows a column: pages of two and one
    plain = await seal_sets(committed, settings, 3)
    assert {(table, column) for table, column, _ in plain} == {
        (c.model.__tablename__, c.attribute) for c in SEALED_COLUMNS
    }
    sleeps = Sleeps()

    report = await rewrap_all(committed, ROTATED, pause_seconds=PAUSE, sleep=sleeps)

    assert report == RewrapReport(moved=len(plain), remaining=0)
    assert report.complete
    assert await opened_with_new_key_only(committed) == plain
    assert sleeps.calls == []
    assert await rewrap_all(committed, ROTATED, sleep=sleeps) == RewrapReport(0, 0)


@pytest.mark.parametrize(
    "model", [ConsentGrant, ProvisioningRequest, ConsentFlow, IdempotencyRecord, WebhookEndpoint]
)
async def test_a_locked_row_is_skipped_then_moved_once_released(
    committed: async_sessionmaker[AsyncSession],
    rewrap_engine: AsyncEngine,
    settings: Settings,
    model: Any,
) -> None:
    plain = await seal_sets(committed, settings, 2)
    holder, locked_id = await lock_a_row(rewrap_engine, model)

    async def release_after_the_first_pass() -> None:
        still_old = {p for p, key in (await key_ids(committed)).items() if key == "old"}
        assert still_old == {p for p in plain if p[0] == model.__tablename__ and p[2] == locked_id}
        await holder.rollback()

    sleeps = Sleeps(then=release_after_the_first_pass)
    try:
        report = await rewrap_all(committed, ROTATED, pause_seconds=PAUSE, sleep=sleeps)
    finally:
        await holder.close()

    assert report == RewrapReport(moved=len(plain), remaining=0)
    assert sleeps.calls == [PAUSE]
    assert await opened_with_new_key_only(committed) == plain


async def test_a_row_locked_past_the_last_pass_is_reported_as_remaining(
    committed: async_sessionmaker[AsyncSession], rewrap_engine: AsyncEngine, settings: Settings
) -> None:
    plain = await seal_sets(committed, settings, 2)
    holder, _ = await lock_a_row(rewrap_engine, ConsentGrant)  # a grant holds two sealed values
    sleeps = Sleeps()
    try:
        report = await rewrap_all(committed, ROTATED, passes=3, pause_seconds=PAUSE, sleep=sleeps)
        assert report == RewrapReport(moved=len(plain) - 2, remaining=2)
        assert not report.complete
        assert sleeps.calls == [PAUSE, PAUSE]
        assert list((await key_ids(committed)).values()).count("old") == 2
    finally:
        await holder.close()

    assert await rewrap_all(committed, ROTATED, sleep=sleeps) == RewrapReport(2, 0)
    assert await opened_with_new_key_only(committed) == plain
