"""Shared fixtures: a real Postgres with real migrations, a transaction rolled back per test."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from service.callers.store import create_caller
from service.crypto.keyring import KeyRing, generate_key_entry
from service.main import build_tailscale_client, create_app
from service.ops.devdb import ensure_database, find_server, with_database
from service.ops.migrate import upgrade_head
from service.provisioning.notify import RequestNotifier
from service.settings import Settings
from service.state import AppContext
from tests.helpers.early_imports import import_lazy_modules_now

# tsprov behind the tailscale serve stand-in, for the console's pages; any suite may ask for it.
from tests.helpers.serve_standin import console_api, console_stack  # noqa: F401
from tests.helpers.stack import scoped_database_name

import_lazy_modules_now()

ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE = "tsprov_test"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """TSPROV_DATABASE_URL's server, else the local one, else a private cluster (stopped after)."""
    configured = os.environ.get("TSPROV_DATABASE_URL")
    if configured:
        parts = urlsplit(configured.replace("postgresql+asyncpg://", "postgresql://", 1))
        yield urlunsplit((parts.scheme, parts.netloc, "", parts.query, ""))
        return
    server = find_server(ROOT)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def database_url(postgres_server: str) -> str:
    """A fresh test database on the resolved server, migrated to head once per session."""
    url = with_database(postgres_server, scoped_database_name(TEST_DATABASE))
    asyncio.run(ensure_database(url, recreate=True))
    upgrade_head(url)
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture(scope="session")
def key_ring_text() -> str:
    return ",".join([generate_key_entry("test1"), generate_key_entry("test0")])


@pytest.fixture(scope="session")
def key_ring(key_ring_text: str) -> KeyRing:
    return KeyRing.parse(key_ring_text)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url, hide_parameters=True)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """The test's outer transaction; everything the test and the app do rolls back."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        yield connection
        await transaction.rollback()


@pytest.fixture
def sessions(db_connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        bind=db_connection,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        autoflush=False,
    )


@pytest.fixture
async def session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        yield session


@pytest.fixture
def settings(database_url: str, key_ring_text: str) -> Settings:
    """Development settings pointing at an address nothing listens on (no sandbox needed)."""
    return Settings(
        env="development",
        database_url=database_url,
        public_url="http://127.0.0.1:8000",
        tailscale_login_url="http://127.0.0.1:9",
        tailscale_api_url="http://127.0.0.1:9",
        oauth_client_id="test-client",
        oauth_client_secret=SecretStr("test-client-secret"),
        encryption_keys=SecretStr(key_ring_text),
        return_to_allowlist=["/welcome", "/devboxes/"],
    )


@pytest.fixture
async def context(
    settings: Settings,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    key_ring: KeyRing,
) -> AsyncIterator[AppContext]:
    """The app's shared state, with every session inside the test's rolled-back transaction."""
    http = httpx.AsyncClient()
    context = AppContext(
        settings=settings,
        engine=engine,
        sessions=sessions,
        key_ring=key_ring,
        tailscale=build_tailscale_client(settings, http),
        notifier=RequestNotifier(settings.database_url),
    )
    yield context
    await http.aclose()


@pytest.fixture
async def client(context: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    """An API client over ASGITransport (no network), for the app built on ``context``."""
    app = create_app(context=context)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tsprov.test") as client:
        yield client


CallerFactory = Callable[..., Awaitable[str]]


@pytest.fixture
def make_caller(sessions: async_sessionmaker[AsyncSession]) -> CallerFactory:
    """``await make_caller("provision", users=["*@eng.example.com"])`` → a bearer key."""
    counter = iter(range(1_000_000))

    async def make(*scopes: str, users: list[str] | None = None, name: str | None = None) -> str:
        async with sessions() as session, session.begin():
            _, key = await create_caller(
                session, name or f"caller-{next(counter)}", list(scopes), users or []
            )
        return key

    return make


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
