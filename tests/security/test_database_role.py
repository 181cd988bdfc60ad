"""security.md item 38: production refuses a database role that could rewrite the trail."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from service.audit.signing import generate_signing_key
from service.main import create_app
from service.ops.app_role import runtime_role_problems
from service.settings import Settings


async def acting_as(connection: AsyncConnection, *grants: str) -> str:
    """A fresh role holding the app role plus ``grants``, taken on for the test's transaction."""
    role = f"tsprov_probe_{uuid.uuid4().hex[:10]}"
    await connection.execute(text(f'CREATE ROLE "{role}" NOLOGIN IN ROLE tsprov_app'))
    for grant in grants:
        await connection.execute(text(grant.format(role=f'"{role}"')))
    await connection.execute(text(f'SET LOCAL ROLE "{role}"'))
    return role


async def test_item_38_the_app_role_itself_passes(db_connection: AsyncConnection) -> None:
    await acting_as(db_connection)
    assert await runtime_role_problems(db_connection) == []


async def test_item_38_a_superuser_is_refused_naming_the_setting(
    db_connection: AsyncConnection,
) -> None:
    problems = await runtime_role_problems(db_connection)  # the test server's postgres
    assert len(problems) == 1
    assert "superuser" in problems[0]
    assert "TSPROV_DATABASE_URL" in problems[0]


async def test_item_38_the_audit_tables_owner_is_refused(db_connection: AsyncConnection) -> None:
    role = await acting_as(db_connection)
    await db_connection.execute(text("RESET ROLE"))
    await db_connection.execute(text(f'ALTER TABLE audit_link OWNER TO "{role}"'))
    await db_connection.execute(text(f'SET LOCAL ROLE "{role}"'))
    problems = await runtime_role_problems(db_connection)
    assert len(problems) == 1
    assert "owns" in problems[0]
    assert "audit_link" in problems[0]


async def test_item_38_update_or_delete_on_the_trail_is_refused_naming_the_revoke(
    db_connection: AsyncConnection,
) -> None:
    role = await acting_as(db_connection, "GRANT DELETE ON audit_event TO {role}")
    problems = await runtime_role_problems(db_connection)
    assert problems == [
        f"the database role {role} may UPDATE or DELETE audit_event; "
        f"REVOKE UPDATE, DELETE ON audit_event FROM {role} (and from any role it inherits)"
    ]


async def test_item_38_a_production_start_as_a_superuser_stops(
    database_url: str, key_ring_text: str
) -> None:
    settings = Settings(
        env="production",
        database_url=database_url,  # the test server's superuser
        public_url="http://127.0.0.1:8000",
        oauth_client_id="prod-client",
        oauth_client_secret=SecretStr("a-real-looking-client-secret"),
        encryption_keys=SecretStr(key_ring_text),
        audit_signing_key=SecretStr(generate_signing_key()),
    )
    app = create_app(settings, run_background=False)
    with pytest.raises(RuntimeError, match=r"refusing to start in production: .*superuser"):
        async with app.router.lifespan_context(app):
            pass
