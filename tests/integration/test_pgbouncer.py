"""tsprov behind a real PgBouncer in transaction mode: with TSPROV_DB_STATEMENT_CACHE=false a
consent, a claim, a join and a long-poll woken through LISTEN/NOTIFY all work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from sandbox.app import create_app as create_sandbox
from service.db import create_engine
from service.main import create_app
from service.settings import Settings
from tests.conftest import bearer
from tests.helpers.browser import Browser
from tests.helpers.pgbouncer import PgBouncer, pgbouncer_binary
from tests.helpers.servers import ThreadedServer
from tests.helpers.stack import TEST_CREDENTIALS, LateApp, migrated_database, scoped_database_name
from tests.helpers.steps import create_request, new_user
from tests.integration.conftest import new_caller

PGB_DATABASE = "tsprov_pgb"
BINARY = pgbouncer_binary()
pytestmark = pytest.mark.skipif(
    BINARY is None, reason="Debian's pgbouncer is not installed (make test installs it as root)"
)


@dataclass
class BouncedStack:
    service_url: str
    sandbox_url: str
    direct_url: str
    bouncer: PgBouncer
    settings: Settings


@pytest.fixture(scope="module")
def bounced(postgres_server: str, key_ring_text: str) -> Iterator[BouncedStack]:
    """The sandbox, PgBouncer in front of a fresh database, and tsprov using PgBouncer."""
    assert BINARY is not None
    direct = migrated_database(postgres_server, PGB_DATABASE)
    late = LateApp()
    service = ThreadedServer(late)
    sandbox_settings = TEST_CREDENTIALS.sandbox_settings([f"{service.url}/callback"])
    name = scoped_database_name(PGB_DATABASE)
    with (
        PgBouncer(BINARY, postgres_server, name) as bouncer,
        ThreadedServer(create_sandbox(sandbox_settings)) as sandbox_server,
    ):
        settings = TEST_CREDENTIALS.service_settings(
            bouncer.url,
            service.url,
            sandbox_server.url,
            key_ring_text,
            db_statement_cache=False,
            listen_database_url=direct,
        )
        late.app = create_app(settings)
        with service:
            yield BouncedStack(service.url, sandbox_server.url, direct, bouncer, settings)


@pytest.fixture
async def api(bounced: BouncedStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=bounced.service_url, timeout=60) as client:
        yield client


async def test_consent_claim_and_join_through_pgbouncer_in_transaction_mode(
    bounced: BouncedStack, api: httpx.AsyncClient
) -> None:
    key = await new_caller(bounced.direct_url, ["provision", "read"])
    request = await create_request(api, key, new_user(), hostname="bounced")
    async with Browser(bounced.sandbox_url) as browser:
        callback = await browser.consent(request["consent_url"], login="bob@example.com")
    assert callback.status_code == 303, callback.text

    path = f"/v1/provisioning-requests/{request['id']}"
    claim = await api.post(f"{path}/claim", headers=bearer(key))
    assert claim.status_code == 200, claim.text
    join = {"authKey": claim.json()["auth_key"], "hostname": "bounced", "os": "linux"}
    async with httpx.AsyncClient(base_url=bounced.sandbox_url, timeout=30) as sandbox:
        joined = await sandbox.post("/sandbox/join", json=join)
    assert joined.status_code == 200, joined.text

    # The join watch commits through PgBouncer; its NOTIFY reaches the direct LISTEN.
    watched = await api.get(path, params={"wait_seconds": 20}, headers=bearer(key))
    assert watched.json()["status"] == "joined"
    assert "login attempt: db=" + scoped_database_name(PGB_DATABASE) in bounced.bouncer.log()
    readiness = await api.get("/readyz")
    assert readiness.status_code == 200


async def test_the_setting_is_what_makes_pgbouncer_work(
    postgres_server: str, bounced: BouncedStack
) -> None:
    """A query repeated while another client holds the server connection it was prepared on."""
    assert BINARY is not None
    name = scoped_database_name(PGB_DATABASE)
    with PgBouncer(BINARY, postgres_server, name, pool_size=2) as pooler:
        url = pooler.url.replace("postgresql://", "postgresql+asyncpg://", 1)
        cached = bounced.settings.model_copy(
            update={"database_url": url, "db_statement_cache": True}
        )
        uncached = bounced.settings.model_copy(
            update={"database_url": url, "db_statement_cache": False}
        )
        # The default engine sends statement_timeout at startup, which PgBouncer refuses…
        assert "unsupported startup parameter" in await failure_of(create_engine(cached), url)
        # …and, without it, reuses a statement prepared on a server connection it lost.
        bare = {"server_settings": {"application_name": "tsprov"}}
        moved = await failure_of(create_async_engine(url, connect_args=bare), url)
        assert "prepared statement" in moved
        assert await failure_of(create_engine(uncached), url) == ""


async def failure_of(engine: AsyncEngine, url: str) -> str:
    """Run one query twice, the second time while another client holds the server
    connection the first ran on; the error, or "" when none."""
    other = create_async_engine(url, connect_args={"server_settings": {}})
    query = text("SELECT count(*) FROM pg_class WHERE relpages >= CAST(:n AS int)")
    try:
        async with engine.connect() as connection:
            await connection.execute(query, {"n": 0})
        # PgBouncer hands out the server connection used last, so this takes the first's.
        async with other.connect() as holder:
            await holder.execute(text("SELECT 1"))
            async with engine.connect() as connection:
                await connection.execute(query, {"n": 0})
    except DBAPIError as exc:
        return str(exc.orig)
    finally:
        await asyncio.gather(engine.dispose(), other.dispose())
    return ""
