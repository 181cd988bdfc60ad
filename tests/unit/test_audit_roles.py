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
from service.audit.signing import AuditSigner, generate_signing_key
from service.models import AuditEvent, AuditLink
from tests.unit.audit_support import seal_now

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
        await seal_now(session)
    report = await prune_audit(sessions, 1, now=datetime(2100, 1, 1, tzinfo=UTC))
    assert report.pruned == 1


@pytest.mark.usefixtures("as_service_login")
async def test_service_role_seals_but_cannot_choose_the_order_or_rewrite_a_seal(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        event = await record_event(
            session, origin="CONTROL", actor=WORKER, target=Target("n1", "box", "NODE"),
            action="CREATE",
        )  # fmt: skip
        sealed = await seal_now(session, AuditSigner.parse(generate_signing_key()))
    assert sealed.sealed == 1
    assert sealed.checkpoint is not None
    chosen = (
        "INSERT INTO audit_event (seq, id, event_time, event_group_id, origin, actor, target, "
        "action, event_name, action_details, error) VALUES (1, gen_random_uuid(), now(), 'g', "
        "'CONTROL', '{}', '{}', 'CREATE', 'NODE.CREATE', '', '')"
    )
    assert "permission denied" in await _denied(sessions, chosen)
    backdated = chosen.replace("(seq,", "(xid,").replace("VALUES (1,", "VALUES ('3',")
    assert "permission denied" in await _denied(sessions, backdated)
    for statement in (
        "UPDATE audit_seal SET hash = prev_hash WHERE event_seq = :seq",
        "DELETE FROM audit_seal WHERE event_seq = :seq",
        "UPDATE audit_signed_checkpoint SET hash = '\\x00' WHERE event_seq = :seq",
        "DELETE FROM audit_signed_checkpoint WHERE event_seq = :seq",
    ):
        assert "permission denied" in await _denied(sessions, statement, seq=event.seq)
