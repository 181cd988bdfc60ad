"""The sandbox, and tsprov services built per test with the limits each fault needs.

A fault test changes upstream settings (deadline, read timeout) and trips the circuit
breaker, so each test gets its own service, on its own port, over one committed database.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as create_engine

from sandbox.app import create_app as create_sandbox
from sandbox.settings import SandboxSettings
from service.callers.store import create_caller
from service.main import build_context, close_context, create_app
from service.ops.devdb import ensure_database, with_database
from service.ops.migrate import upgrade_head
from service.settings import Settings
from service.state import AppContext
from tests.helpers.browser import Browser
from tests.helpers.fault_flows import APP_PATH, REUSABLE_SCOPE, consented_user
from tests.helpers.servers import ThreadedServer
from tests.helpers.stack import SANDBOX_ADMIN, TEST_CREDENTIALS, LateApp, scoped_database_name

FAULTS_DATABASE = "tsprov_faults"
# The services' upstream deadline unless a test sets its own: short, so a test held by a
# slow upstream lasts seconds, not the 20 s default.
DEADLINE_SECONDS = 2.0


@dataclass
class Service:
    url: str
    settings: Settings
    api: httpx.AsyncClient


ServiceFactory = Callable[..., Awaitable[Service]]


class Granted(NamedTuple):
    """A service asking for the reusable scope, and a user whose consent it holds."""

    service: Service
    user: str


GrantFactory = Callable[..., Awaitable[Granted]]


async def drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(with_database(server_url, "postgres"), timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def faults_database_url(postgres_server: str) -> Iterator[str]:
    """A database of this test session's own, dropped at its end."""
    # Another session recreating a shared database would cut this one's services mid-test.
    name = f"{scoped_database_name(FAULTS_DATABASE)}_{os.getpid()}"
    url = with_database(postgres_server, name)
    asyncio.run(ensure_database(url, recreate=True))
    upgrade_head(url)
    yield url.replace("postgresql://", "postgresql+asyncpg://", 1)
    asyncio.run(drop_database(postgres_server, name))


def sandbox_settings() -> SandboxSettings:
    return TEST_CREDENTIALS.sandbox_settings(["http://127.0.0.1:8000/callback"])


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[ThreadedServer]:
    """The sandbox every fault module shares unless it brings its own."""
    # A request held there is logged when it ends, maybe in a later test's log: a test waits
    # out what it holds, or (for 30 s holds) uses a sandbox of its own.
    with ThreadedServer(create_sandbox(sandbox_settings())) as server:
        yield server


@pytest.fixture
def base_settings(
    faults_database_url: str, sandbox_server: ThreadedServer, key_ring_text: str
) -> Settings:
    return TEST_CREDENTIALS.service_settings(
        faults_database_url,
        "http://127.0.0.1:8000",
        sandbox_server.url,
        key_ring_text,
        upstream_deadline_seconds=DEADLINE_SECONDS,
    )


@pytest.fixture(scope="session")
async def faults_engine(faults_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(faults_database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def db(faults_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on the fault database, committed like the services' own."""
    return async_sessionmaker(faults_engine, expire_on_commit=False)


@pytest.fixture
async def sandbox(sandbox_server: ThreadedServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the sandbox, reset to its seeded state for each test."""
    async with httpx.AsyncClient(base_url=sandbox_server.url, timeout=60) as client:
        (await client.post("/sandbox/reset")).raise_for_status()
        yield client


async def allow_callback(sandbox: httpx.AsyncClient, callback_url: str) -> None:
    """Register one more redirect URI on the sandbox's OAuth app (a full PUT, as documented)."""
    app = (await sandbox.get(APP_PATH, headers=SANDBOX_ADMIN)).json()
    body: dict[str, Any] = {
        "name": app["name"],
        "description": app["description"],
        "redirectURIs": [*app["redirectURIs"], callback_url],
        "scopes": app["scopes"],
        "allowedNodeAttributes": app["allowedNodeAttributes"],
    }
    (await sandbox.put(APP_PATH, json=body, headers=SANDBOX_ADMIN)).raise_for_status()


@pytest.fixture
async def start_service(
    base_settings: Settings, sandbox: httpx.AsyncClient
) -> AsyncIterator[ServiceFactory]:
    """``await start_service(reusable=True, upstream_read_timeout_seconds=0.3)`` → a Service."""
    running: list[tuple[ThreadedServer, httpx.AsyncClient]] = []

    async def start(*, reusable: bool = False, **overrides: Any) -> Service:
        late = LateApp()
        server = ThreadedServer(late)
        update = {"public_url": server.url, **overrides}
        if reusable:
            update["oauth_scope"] = REUSABLE_SCOPE
        settings = base_settings.model_copy(update=update)
        # The tests run the background jobs themselves, when they mean to.
        late.app = create_app(settings, run_background=False)
        await allow_callback(sandbox, f"{server.url}/callback")
        await asyncio.to_thread(server.start)
        api = httpx.AsyncClient(base_url=server.url, timeout=60)
        running.append((server, api))
        return Service(server.url, settings, api)

    yield start
    for server, api in running:
        await api.aclose()
        await asyncio.to_thread(server.stop)


@pytest.fixture
async def browser(sandbox_server: ThreadedServer) -> AsyncIterator[Browser]:
    async with Browser(sandbox_server.url) as browser:
        yield browser


@pytest.fixture
async def make_key(db: async_sessionmaker[AsyncSession]) -> Callable[[], Awaitable[str]]:
    """A factory of fresh callers with every non-admin scope, in the fault database."""

    async def make() -> str:
        async with db() as session, session.begin():
            _, key = await create_caller(
                session, f"faults-{uuid.uuid4().hex[:12]}", ["provision", "read", "audit"], []
            )
        return key

    return make


@pytest.fixture
async def caller_key(make_key: Callable[[], Awaitable[str]]) -> str:
    return await make_key()


@pytest.fixture
async def jobs_context(base_settings: Settings) -> AsyncIterator[AppContext]:
    """What ``run_job`` needs, as ``tsprov serve`` builds it, on the fault database."""
    context = await build_context(base_settings)
    yield context
    await close_context(context)


@pytest.fixture
def start_granted(
    start_service: ServiceFactory,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
) -> GrantFactory:
    """``service, user = await start_granted(**overrides)``: most fault tests start here."""

    async def start(**overrides: Any) -> Granted:
        service = await start_service(reusable=True, **overrides)
        return Granted(service, await consented_user(sandbox, service.api, browser, caller_key))

    return start
