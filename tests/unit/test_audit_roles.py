"""The service's database role may append and read audit rows, never change or delete them."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from service.audit.chain import verify_audit_chain
from service.audit.events import WORKER, Target, record_event
from service.audit.retention import PruneRefused, prune_audit
from service.models import AuditEvent, AuditLink

APP_ROLE = "tsprov_app"


@pytest.fixture
async def as_service_login(db_connection: AsyncConnection) -> AsyncIterator[str]:
    """A LOGIN role in tsprov_app, as the docs deploy it, for the rest of the test."""
    login = f"tsprov_svc_{secrets.token_hex(4)}"
    await db_connection.execute(text(f"CREATE ROLE {login} LOGIN IN ROLE {APP_ROLE}"))
    await db_connection.execute(text(f"SET LOCAL ROLE {login}"))
    yield login
    await db_connection.execute(text("RESET ROLE"))


async def _denied(
    sessions: async_sessionmaker[AsyncSession], statement: str, **params: object
) -> str:
    with pytest.raises(ProgrammingError) as caught:
        async with sessions() as session, session.begin():
            await session.execute(text(statement), params)
    return str(caught.value.orig)


@pytest.mark.usefixtures("as_service_login")
async def test_service_role_appends_and_reads_but_cannot_rewrite(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        event = await record_event(
            session, origin="CONTROL", actor=WORKER, target=Target("n1", "box", "NODE"),
            action="CREATE",
        )  # fmt: skip
        session.add(AuditLink(event_id=event.id, upstream_event_group_id="upstream-1"))
    async with sessions() as session:
        assert await session.scalar(select(AuditEvent.id).where(AuditEvent.id == event.id))
        current = await session.scalar(text("SELECT current_user"))
    assert current is not None
    assert current.startswith("tsprov_svc_")
    update = "UPDATE audit_event SET error = 'rewritten' WHERE id = :id"
    assert "permission denied" in await _denied(sessions, update, id=event.id)
    delete = "DELETE FROM audit_event WHERE id = :id"
    assert "permission denied" in await _denied(sessions, delete, id=event.id)
    assert "permission denied" in await _denied(sessions, "TRUNCATE audit_event")
    assert "permission denied" in await _denied(
        sessions, "DELETE FROM audit_link WHERE event_id = :id", id=event.id
    )
    forged = (
        "INSERT INTO audit_checkpoint (last_seq, last_hash, pruned_count) VALUES (1, '\\x00', 0)"
    )
    assert "permission denied" in await _denied(sessions, forged)
    assert (await verify_audit_chain(sessions)).ok


@pytest.mark.usefixtures("as_service_login")
async def test_service_role_cannot_prune(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await record_event(
            session, origin="CONTROL", actor=WORKER, target=Target("g", "u", "GRANT"),
            action="EXPIRED",
        )  # fmt: skip
    future = datetime(2100, 1, 1, tzinfo=UTC)
    with pytest.raises(PruneRefused, match="owner"):
        await prune_audit(sessions, 1, now=future)


async def test_owner_role_may_prune(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await record_event(
            session, origin="CONTROL", actor=WORKER, target=Target(str(uuid.uuid4()), "u", "GRANT"),
            action="EXPIRED",
        )  # fmt: skip
    report = await prune_audit(sessions, 1, now=datetime(2100, 1, 1, tzinfo=UTC))
    assert report.pruned == 1
