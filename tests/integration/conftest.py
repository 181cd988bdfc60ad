"""tsprov and the sandbox as real HTTP servers over a committed (not rolled-back) database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from sandbox.app import create_app as create_sandbox
from sandbox.settings import SandboxSettings
from service.callers.store import create_caller
from service.main import create_app
from service.settings import Settings
from tests.helpers.servers import ThreadedServer

# api, browser and sandbox are fixtures: per-test clients of the stack, shared across suites.
from tests.helpers.stack import TEST_CREDENTIALS, LateApp, api, browser, migrated_database, sandbox  # noqa: F401

IT_DATABASE = "tsprov_it"
# Both services label the devices they provision; where the observer lacks the scope, the
# refusal is audited and nothing else changes.
ATTRIBUTE = "custom:tsprov_request"


@dataclass
class Stack:
    service_url: str
    reusable_url: str
    sandbox_url: str
    settings: Settings
    reusable_settings: Settings
    sandbox_settings: SandboxSettings


@pytest.fixture(scope="session")
def it_database_url(postgres_server: str) -> str:
    return migrated_database(postgres_server, IT_DATABASE)


@pytest.fixture(scope="session")
def stack(it_database_url: str, key_ring_text: str) -> Iterator[Stack]:
    """The sandbox and two services (one-time and reusable scope), on loopback ports."""
    once_app, reusable_app = LateApp(), LateApp()
    once, reusable = ThreadedServer(once_app), ThreadedServer(reusable_app)
    sandbox_settings = TEST_CREDENTIALS.sandbox_settings(
        [f"{once.url}/callback", f"{reusable.url}/callback"]
    )
    with ThreadedServer(create_sandbox(sandbox_settings)) as sandbox_server:
        settings = TEST_CREDENTIALS.service_settings(
            it_database_url, once.url, sandbox_server.url, key_ring_text, node_attribute=ATTRIBUTE
        )
        reusable_settings = settings.model_copy(
            update={"public_url": reusable.url, "oauth_scope": "auth_keys:create"}
        )
        once_app.app = create_app(settings)
        reusable_app.app = create_app(reusable_settings)
        with once, reusable:
            yield Stack(
                once.url,
                reusable.url,
                sandbox_server.url,
                settings,
                reusable_settings,
                sandbox_settings,
            )


async def new_caller(database_url: str, scopes: list[str]) -> str:
    engine = create_async_engine(database_url.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        async with async_sessionmaker(engine)() as session, session.begin():
            _, key = await create_caller(session, f"it-{uuid.uuid4().hex[:12]}", scopes, [])
    finally:
        await engine.dispose()
    return key


@pytest.fixture
async def caller_key(it_database_url: str) -> str:
    """A fresh caller with every non-admin scope, in the integration database."""
    return await new_caller(it_database_url, ["provision", "read", "audit"])


@pytest.fixture
async def admin_key(it_database_url: str) -> str:
    return await new_caller(it_database_url, ["admin"])


@pytest.fixture
async def it_sessions(it_database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the integration database, committed like the services' own."""
    engine = create_async_engine(it_database_url.replace("postgresql://", "postgresql+asyncpg://"))
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


@pytest.fixture
async def reusable_api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.reusable_url, timeout=60) as client:
        yield client
