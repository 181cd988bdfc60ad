"""The sealer migration: it checks the old chain, converts it, and converts it back."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, SimpleNamespace

import asyncpg
import pytest
from alembic import command
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from service.audit.chain import verify_chain
from service.ops.migrate import alembic_config, upgrade_head

REVISION = Path(__file__).parents[2] / "migrations" / "versions" / "2026-12-05_audit_sealer.py"
OLD_INSERT = (
    "INSERT INTO audit_event (id, event_time, event_group_id, origin, actor, target, action, "
    "event_name, old, new, action_details, error, user_id, prev_hash, hash) VALUES "
    "($1, $2, 'g', 'CONTROL', $3::jsonb, $4::jsonb, 'CREATE', 'NODE.CREATE', NULL, $5::jsonb, "
    "'', '', NULL, $6, $7)"
)


def _revision() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_sealer_revision", REVISION)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _old_chain(url: str, count: int) -> None:
    """Events chained as the previous revision's service chained them."""
    revision = _revision()
    connection = await asyncpg.connect(url)
    prev = bytes(32)
    for index in range(count):
        row = SimpleNamespace(
            id=uuid.uuid4(), event_time=datetime.now(UTC), event_group_id="g", origin="CONTROL",
            actor={"id": "a"}, target={"id": f"n{index}", "type": "NODE"}, action="CREATE",
            event_name="NODE.CREATE", old=None, new={"n": index}, action_details="", error="",
            user_id=None,
        )  # fmt: skip
        digest = revision._old_hash(prev, row)
        await connection.execute(
            OLD_INSERT, row.id, row.event_time, json.dumps(row.actor), json.dumps(row.target),
            json.dumps(row.new), prev, digest,
        )  # fmt: skip
        prev = digest
    await connection.close()


async def _verified(url: str) -> tuple[bool, int]:
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        report = await verify_chain(async_sessionmaker(engine))
    finally:
        await engine.dispose()
    return report.ok, report.checked


def test_the_old_chain_is_checked_converted_and_converted_back(
    fresh_database: str, app_role: str
) -> None:
    config = alembic_config(fresh_database, app_role)
    command.upgrade(config, "0002")
    asyncio.run(_old_chain(fresh_database, 5))
    upgrade_head(fresh_database, app_role)
    assert asyncio.run(_verified(fresh_database)) == (True, 5)
    command.downgrade(config, "0002")
    # Back on the old chain: upgrading again checks it event by event, and it holds.
    upgrade_head(fresh_database, app_role)
    assert asyncio.run(_verified(fresh_database)) == (True, 5)


def test_a_broken_old_chain_stops_the_upgrade(fresh_database: str, app_role: str) -> None:
    config = alembic_config(fresh_database, app_role)
    command.upgrade(config, "0002")
    asyncio.run(_old_chain(fresh_database, 3))

    async def rewrite() -> None:
        connection = await asyncpg.connect(fresh_database)
        await connection.execute("UPDATE audit_event SET error = 'x' WHERE seq = 2")
        await connection.close()

    asyncio.run(rewrite())
    with pytest.raises(RuntimeError, match="the audit chain is broken at event"):
        command.upgrade(config, "head")
