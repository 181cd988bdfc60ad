"""docker-compose.yml fits the compose specification, and runs tsprov as the app role."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.deploy.manifests import COMPOSE_FILE, Document, compose, known_setting_names

# check-jsonschema ships this schema inside the package: validating downloads nothing.
COMPOSE_SCHEMA = "vendor.compose-spec"
COMPOSE_LOGIN_STEP = "app-login"


def check_compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", COMPOSE_SCHEMA, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def services() -> dict[str, Document]:
    found: dict[str, Document] = compose()["services"]
    return found


def database_user(service: str) -> str:
    url: str = services()[service]["environment"]["TSPROV_DATABASE_URL"]
    user = urlsplit(url).username
    assert user
    return user


def app_login_sql() -> str:
    """The SQL the login step runs, as psql receives it after compose's `$$` unescaping."""
    command: list[str] = services()[COMPOSE_LOGIN_STEP]["command"]
    sql = command[command.index("--command") + 1]
    assert "$" not in sql.replace("$$", ""), "an unescaped $ would be a compose variable"
    return sql.replace("$$", "$")


def test_compose_file_fits_the_compose_specification() -> None:
    result = check_compose_schema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_unknown_compose_key_fails_validation(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    text_with_typo = COMPOSE_FILE.read_text().replace("stop_grace_period:", "stop_grace_perod:")
    assert text_with_typo != COMPOSE_FILE.read_text()
    broken.write_text(text_with_typo)
    result = check_compose_schema(broken)
    assert result.returncode != 0
    assert "stop_grace_perod" in result.stdout + result.stderr


def test_tsprov_containers_are_read_only_and_unprivileged() -> None:
    built = {name: service for name, service in services().items() if "build" in service}
    assert set(built) >= {"migrate", "sandbox", "tsprov"}
    for name, service in built.items():
        assert service["read_only"] is True, name
        assert "/tmp" in service["tmpfs"], name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert "user" not in service, f"{name} must run as the image's non-root user"


def test_service_logs_in_as_the_app_role_and_only_migrate_as_the_owner() -> None:
    owner = services()["postgres"]["environment"]["POSTGRES_USER"]
    assert database_user("migrate") == owner
    login = database_user("tsprov")
    assert login != owner
    assert f"CREATE ROLE {login} LOGIN" in app_login_sql()
    app_role = services()["migrate"]["environment"]["TSPROV_APP_ROLE"]
    assert f"GRANT {app_role} TO {login}" in app_login_sql()
    order = {name: service.get("depends_on", {}) for name, service in services().items()}
    completed = {"condition": "service_completed_successfully"}
    assert order["tsprov"][COMPOSE_LOGIN_STEP] == completed
    assert order[COMPOSE_LOGIN_STEP]["migrate"] == completed
    assert order["migrate"]["postgres"] == {"condition": "service_healthy"}


def test_every_tsprov_variable_is_a_setting_tsprov_reads() -> None:
    for name in ("migrate", "tsprov"):
        assert set(services()[name]["environment"]) <= known_setting_names(), name


async def test_login_step_makes_a_login_that_cannot_rewrite_the_trail(
    db_connection: AsyncConnection,
) -> None:
    """Runs the step's SQL in the test's rolled-back transaction (roles are transactional)."""
    await db_connection.execute(text("SELECT 1"))  # the transaction is open from here on
    raw = (await db_connection.get_raw_connection()).driver_connection
    assert raw is not None
    assert raw.is_in_transaction()
    login = database_user("tsprov")
    app_role = services()["migrate"]["environment"]["TSPROV_APP_ROLE"]
    for _ in range(2):  # `docker compose up` runs it again on every start
        await raw.execute(app_login_sql())
    assert await raw.fetchval("SELECT pg_has_role($1, $2, 'MEMBER')", login, app_role)
    await raw.execute(f'SET LOCAL ROLE "{login}"')
    assert await raw.fetchval("SELECT count(*) FROM audit_event") >= 0
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with raw.transaction():
            await raw.execute("UPDATE audit_event SET error = 'rewritten'")
    await raw.execute("RESET ROLE")
