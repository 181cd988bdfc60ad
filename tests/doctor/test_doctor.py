"""``tsprov doctor`` against the sandbox: one line per check, and under each of the
sandbox's switches for the unknowns, the line that names what this tailnet does."""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.crypto.keyring import generate_key_entry
from service.ops.doctor.report import Check, Outcome
from service.ops.doctor.run import run_checks
from service.settings import Settings
from tests.doctor.conftest import Stack
from tests.helpers.browser import Browser
from tests.helpers.callers import caller_key_at
from tests.helpers.servers import serve_environment
from tests.helpers.stack import TEST_CREDENTIALS
from tests.helpers.steps import create_request, new_user

ALICE = "alice@example.com"
EVERY_OBSERVER_SCOPE = ["devices:core", "logs:configuration:read", "users:read", "auth_keys:read"]


async def consent_once(stack: Stack, api: httpx.AsyncClient, browser: Browser) -> None:
    """One consent through tsprov, so a consent-made key exists for the identity checks."""
    key = await caller_key_at(stack.database_url, f"doc-{uuid.uuid4().hex[:8]}", ["provision"])
    request = await create_request(api, key, new_user())
    assert (await browser.consent(request["consent_url"], ALICE)).status_code == 303


async def doctor(
    settings: Settings, token: str | None = TEST_CREDENTIALS.admin_token
) -> dict[str, Check]:
    checks = await run_checks(settings, settings, token)
    return {check.name: check for check in checks}


async def switched(
    stack: Stack,
    sandbox: httpx.AsyncClient,
    api: httpx.AsyncClient,
    browser: Browser,
    **switches: Any,
) -> dict[str, Check]:
    """The doctor's findings after a consent made under ``switches``."""
    answer = await sandbox.patch(
        "/sandbox/switches", json={"observer_scopes": EVERY_OBSERVER_SCOPE, **switches}
    )
    assert answer.status_code == 200, answer.text
    await consent_once(stack, api, browser)
    return await doctor(stack.settings)


async def test_a_sound_deployment_passes_every_check(
    stack: Stack, sandbox: httpx.AsyncClient, api: httpx.AsyncClient, browser: Browser
) -> None:
    found = await switched(stack, sandbox, api, browser)
    failed = [check.line() for check in found.values() if check.outcome == Outcome.FAIL]
    assert failed == []
    for name in ("settings", "database", "migrations", "encryption keys", "tailscale login",
                 "tailscale api", "oauth app", "observer"):  # fmt: skip
        assert found[name].outcome == Outcome.OK, found[name].line()
    assert found["identity: key owner"].line() == (
        f"ok    identity: key owner: keys readable, userId present ({ALICE})"
    )
    assert found["identity: configuration log"].outcome == Outcome.OK
    assert ALICE in found["identity: configuration log"].found
    # The tests connect as a superuser: fine for development, named all the same.
    assert found["database role"].outcome == Outcome.WARN


@pytest.mark.parametrize(
    ("switches", "check", "outcome", "says"),
    [
        ({"consent_key_user_id": "empty"}, "identity: key owner", Outcome.WARN, "userId is empty"),
        ({"observer_user_key_access": "not_found"}, "identity: key owner", Outcome.WARN,
         "HTTP 404"),
        ({"observer_user_key_access": "forbidden"}, "identity: key owner", Outcome.WARN,
         "HTTP 403"),
        ({"consent_key_log": "app"}, "identity: configuration log", Outcome.WARN, "OAUTH_CLIENT"),
        ({"consent_key_log": "absent"}, "identity: configuration log", Outcome.WARN, "not logged"),
        ({"observer_scopes": ["devices:core", "logs:configuration:read"]}, "observer", Outcome.WARN,
         "lacks auth_keys:read users:read"),
        ({"observer_scopes": ["devices:core"]}, "observer", Outcome.FAIL,
         "lacks logs:configuration:read"),
    ],
)  # fmt: skip
async def test_each_switch_shows_in_its_line(
    stack: Stack,
    sandbox: httpx.AsyncClient,
    api: httpx.AsyncClient,
    browser: Browser,
    switches: dict[str, Any],
    check: str,
    outcome: Outcome,
    says: str,
) -> None:
    found = await switched(stack, sandbox, api, browser, **switches)
    assert found[check].outcome == outcome, found[check].line()
    assert says in found[check].line()
    if outcome != Outcome.OK:
        assert " — fix: " in found[check].line()


async def test_a_callback_the_app_does_not_know_fails_with_its_fix(
    stack: Stack, sandbox: httpx.AsyncClient
) -> None:
    moved = stack.settings.model_copy(update={"public_url": "https://tsprov.elsewhere.example"})
    found = await doctor(moved)
    assert found["tailscale login"].outcome == Outcome.FAIL
    assert "tsprov app register" in found["tailscale login"].fix
    assert found["oauth app"].outcome == Outcome.FAIL
    assert "lack https://tsprov.elsewhere.example/callback" in found["oauth app"].found


async def test_a_login_host_without_the_authorize_page_points_at_the_other_one(
    stack: Stack, sandbox: httpx.AsyncClient
) -> None:
    wrong = stack.settings.model_copy(
        update={"tailscale_login_url": f"{stack.sandbox_url}/nowhere"}
    )
    found = await doctor(wrong, token=None)
    assert found["tailscale login"].outcome == Outcome.FAIL
    assert (
        "TSPROV_TAILSCALE_LOGIN_URL=https://console.tailscale.com" in found["tailscale login"].fix
    )
    assert found["oauth app"].outcome == Outcome.SKIP


def run_doctor_command(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", "doctor"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_the_command_prints_one_line_per_check_and_exits_by_failures(stack: Stack) -> None:
    environment = serve_environment(stack.settings, stack.service_url)
    environment["TSPROV_TAILSCALE_ADMIN_TOKEN"] = TEST_CREDENTIALS.admin_token
    sound = run_doctor_command(environment)
    assert sound.returncode == 0, sound.stdout + sound.stderr
    lines = sound.stdout.splitlines()
    assert len(lines) >= 10
    assert all(line.split()[0] in {"ok", "warn", "skip"} for line in lines), sound.stdout
    assert TEST_CREDENTIALS.admin_token not in sound.stdout + sound.stderr
    assert TEST_CREDENTIALS.observer_secret not in sound.stdout + sound.stderr

    environment["TSPROV_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:1/tsprov"
    broken = run_doctor_command(environment)
    assert broken.returncode == 1
    database = next(line for line in broken.stdout.splitlines() if " database: " in line)
    assert database.startswith("FAIL")
    assert "fix: check TSPROV_DATABASE_URL" in database
    # The checks that need no database still ran.
    assert any(line.startswith("ok    tailscale login:") for line in broken.stdout.splitlines())


async def test_a_key_missing_from_the_ring_fails_with_its_fix(
    stack: Stack, sandbox: httpx.AsyncClient, api: httpx.AsyncClient, browser: Browser
) -> None:
    await consent_once(stack, api, browser)  # at least one sealed value under the test keys
    other_ring = generate_key_entry("elsewhere")
    found = await doctor(
        TEST_CREDENTIALS.service_settings(
            stack.database_url, stack.service_url, stack.sandbox_url, other_ring
        )
    )
    keys = found["encryption keys"]
    assert keys.outcome == Outcome.FAIL
    assert "missing from the ring" in keys.found
    assert "put those keys back" in keys.fix


async def test_a_hand_granted_update_on_the_audit_trail_fails_the_role_check(
    stack: Stack,
) -> None:
    engine = create_async_engine(
        stack.database_url.replace("postgresql://", "postgresql+asyncpg://")
    )
    role = stack.settings.app_role
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f'GRANT UPDATE ON audit_event TO "{role}"'))
        found = await doctor(stack.settings)
    finally:
        async with engine.begin() as connection:
            await connection.execute(text(f'REVOKE UPDATE ON audit_event FROM "{role}"'))
        await engine.dispose()
    assert found["database role"].outcome == Outcome.FAIL
    assert "has UPDATE on audit_event" in found["database role"].found
    assert (await doctor(stack.settings))["database role"].outcome == Outcome.WARN
