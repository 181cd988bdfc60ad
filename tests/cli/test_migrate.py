"""``tsprov migrate`` from an install, and the app role it keeps in shape on every run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from alembic import command
from alembic.script import ScriptDirectory

from service import models  # noqa: F401  (registers the tables on Base.metadata)
from service.db import Base
from service.ops.app_role import (
    APPEND_ONLY_TABLES,
    AUDIT_EVENT_WRITABLE,
    READ_ONLY_TABLES,
    ROW_APPEND_TABLES,
    WORKING_TABLES,
    AppRoleError,
    app_role_name,
)
from service.ops.migrate import alembic_config, upgrade_head
from tests.helpers.cli_scratch import RunTsprov, Scratch, assert_one_line_failure, fetch_value

WRITES = ("INSERT", "UPDATE", "DELETE")


@pytest.fixture
async def admin(fresh_database: str) -> AsyncIterator[asyncpg.Connection]:
    """The schema owner's connection to the fresh database."""
    connection = await asyncpg.connect(fresh_database, timeout=10)
    yield connection
    await connection.close()


async def migrate(url: str, role: str) -> None:
    # upgrade_head runs its own event loop, so it gets a thread of its own here.
    await asyncio.to_thread(upgrade_head, url, role)


async def privileges(admin: asyncpg.Connection, role: str, table: str) -> set[str]:
    kinds = ("SELECT", *WRITES, "TRUNCATE")
    return {
        kind
        for kind in kinds
        if await admin.fetchval("SELECT has_table_privilege($1, $2, $3)", role, table, kind)
    }


async def assert_granted(admin: asyncpg.Connection, role: str) -> None:
    login = await admin.fetchval("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", role)
    assert login is False
    for table in WORKING_TABLES:
        assert await privileges(admin, role, table) == {"SELECT", *WRITES}
    for table in ROW_APPEND_TABLES:
        assert await privileges(admin, role, table) == {"SELECT", "INSERT"}
    # Events: INSERT of their content only; seq and the writing transaction are the database's.
    assert await privileges(admin, role, "audit_event") == {"SELECT"}
    for column in ("seq", "xid", *AUDIT_EVENT_WRITABLE):
        granted = await admin.fetchval(
            "SELECT has_column_privilege($1, 'audit_event', $2, 'INSERT')", role, column
        )
        assert granted is (column in AUDIT_EVENT_WRITABLE), column
    for table in READ_ONLY_TABLES:
        assert await privileges(admin, role, table) == {"SELECT"}


def test_migrate_runs_outside_a_checkout(
    run_tsprov: RunTsprov, fresh_database: str, app_role: str
) -> None:
    process = run_tsprov("migrate", TSPROV_DATABASE_URL=fresh_database, TSPROV_APP_ROLE=app_role)
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip() == "migrated to head"
    config = alembic_config(fresh_database)
    # An installed tsprov has no alembic.ini: the config must be complete without one.
    assert config.config_file_name is None
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    assert fetch_value(fresh_database, "SELECT version_num FROM alembic_version") == head


def test_every_table_has_a_place_in_the_app_role() -> None:
    lists = (WORKING_TABLES, APPEND_ONLY_TABLES, READ_ONLY_TABLES)
    placed = [table for tables in lists for table in tables]
    assert len(placed) == len(set(placed))
    assert set(placed) == {*Base.metadata.tables, "alembic_version"}


async def test_migrate_brings_back_a_dropped_role(
    admin: asyncpg.Connection, fresh_database: str, app_role: str
) -> None:
    await migrate(fresh_database, app_role)
    await admin.execute(f'DROP OWNED BY "{app_role}"')
    await admin.execute(f'DROP ROLE "{app_role}"')

    await migrate(fresh_database, app_role)
    await assert_granted(admin, app_role)


async def test_migrate_grants_a_newly_named_role(
    admin: asyncpg.Connection, fresh_database: str, app_role: str, scratch: Scratch
) -> None:
    await migrate(fresh_database, app_role)
    renamed = scratch.role()
    await migrate(fresh_database, renamed)
    await assert_granted(admin, renamed)
    await assert_granted(admin, app_role)


async def test_migrate_takes_back_rights_granted_by_hand(
    admin: asyncpg.Connection, fresh_database: str, app_role: str
) -> None:
    await migrate(fresh_database, app_role)
    await admin.execute(f'GRANT UPDATE, DELETE, TRUNCATE ON audit_event TO "{app_role}"')
    await admin.execute(f'GRANT INSERT ON audit_checkpoint TO "{app_role}"')
    await migrate(fresh_database, app_role)
    await assert_granted(admin, app_role)


async def test_downgrade_revokes_and_migrate_grants_again(
    admin: asyncpg.Connection, fresh_database: str, app_role: str
) -> None:
    await migrate(fresh_database, app_role)
    config = alembic_config(fresh_database, app_role)
    await asyncio.to_thread(command.downgrade, config, "0001")
    assert await privileges(admin, app_role, "caller") == set()
    await migrate(fresh_database, app_role)
    await assert_granted(admin, app_role)


@pytest.mark.parametrize("name", ["Tsprov_App", "app-role", "app role", "x;drop", "pg_app", "9a"])
def test_a_role_name_must_be_a_plain_lower_case_identifier(name: str) -> None:
    with pytest.raises(AppRoleError, match="APP_ROLE"):
        app_role_name(name)


def test_migrate_refuses_a_bad_role_name_in_one_line(
    run_tsprov: RunTsprov, fresh_database: str
) -> None:
    process = run_tsprov(
        "migrate", TSPROV_DATABASE_URL=fresh_database, TSPROV_APP_ROLE="app'; DROP TABLE x; --"
    )
    assert "APP_ROLE" in assert_one_line_failure(process)
    assert fetch_value(fresh_database, "SELECT to_regclass('caller') IS NULL") is True


def test_migrate_refuses_a_role_that_bypasses_grants(
    run_tsprov: RunTsprov, fresh_database: str
) -> None:
    # The migrating login owns the tables: no grant could hold it to append-only.
    owner = fetch_value(fresh_database, "SELECT current_user")
    process = run_tsprov("migrate", TSPROV_DATABASE_URL=fresh_database, TSPROV_APP_ROLE=owner)
    assert f"APP_ROLE {owner} is a superuser or owns the tables" in assert_one_line_failure(process)


NEW_EVENT = (
    "INSERT INTO audit_event (id, event_time, event_group_id, origin, actor, target, action, "
    "event_name, action_details, error) VALUES (gen_random_uuid(), now(), "
    "'g1', 'CONTROL', '{}', '{}', 'CREATE', 'NODE.CREATE', '', '') RETURNING id"
)
REWRITES = (
    "UPDATE audit_event SET error = 'rewritten' WHERE id = $1",
    "DELETE FROM audit_event WHERE id = $1",
    "DELETE FROM audit_link WHERE event_id = $1",
    "UPDATE audit_link SET upstream_event_group_id = 'forged' WHERE event_id = $1",
)
BYPASSES = (
    "TRUNCATE audit_event CASCADE",
    "INSERT INTO audit_checkpoint (last_seq, last_hash, pruned_count) VALUES (1, '\\x00', 0)",
    "DELETE FROM alembic_version",
)


async def test_the_role_appends_to_the_trail_but_cannot_rewrite_it(
    admin: asyncpg.Connection, fresh_database: str, app_role: str
) -> None:
    await migrate(fresh_database, app_role)
    outer = admin.transaction()
    await outer.start()
    try:
        await admin.execute(f'SET LOCAL ROLE "{app_role}"')
        event_id = await admin.fetchval(NEW_EVENT)
        link = "INSERT INTO audit_link (event_id, upstream_event_group_id) VALUES ($1, 'up1')"
        await admin.execute(link, event_id)
        assert await admin.fetchval("SELECT count(*) FROM audit_event WHERE id = $1", event_id) == 1
        for statement, args in [(s, (event_id,)) for s in REWRITES] + [(s, ()) for s in BYPASSES]:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with admin.transaction():
                    await admin.execute(statement, *args)
        assert await admin.fetchval("SELECT error FROM audit_event WHERE id = $1", event_id) == ""
    finally:
        await outer.rollback()


async def test_the_role_uses_the_working_tables(
    admin: asyncpg.Connection, fresh_database: str, app_role: str
) -> None:
    await migrate(fresh_database, app_role)
    outer = admin.transaction()
    await outer.start()
    try:
        await admin.execute(f'SET LOCAL ROLE "{app_role}"')
        caller_id = await admin.fetchval(
            "INSERT INTO caller (id, name, key_hash, scopes, user_patterns) "
            "VALUES (gen_random_uuid(), 'svc', '\\x01', '{read}', '{}') RETURNING id"
        )
        await admin.execute("UPDATE caller SET revoked_at = now() WHERE id = $1", caller_id)
        await admin.execute(
            "INSERT INTO user_account (id, user_id) VALUES (gen_random_uuid(), 'u1')"
        )
        await admin.execute("DELETE FROM caller WHERE id = $1", caller_id)
        assert await admin.fetchval("SELECT count(*) FROM caller") == 0
        assert await admin.fetchval("SELECT version_num FROM alembic_version")
    finally:
        await outer.rollback()
