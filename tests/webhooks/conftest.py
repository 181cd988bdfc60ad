"""tsprov and the sandbox as real HTTP servers on a committed database of the suite's own,
with retries a few hundred milliseconds apart so that backoff is quick to watch."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from service.callers.store import create_caller
from tests.conftest import bearer

# api, browser and sandbox are fixtures: per-test clients of the stack, shared across suites.
from tests.helpers.stack import ServedStack, api, browser, migrated_database, sandbox, served_stack  # noqa: F401

WEBHOOK_DATABASE = "tsprov_webhooks"
RETRY_BASE_SECONDS = 0.2
RegisterWebhook = Callable[[str, list[str]], Awaitable[dict[str, Any]]]


# What this suite's tests annotate the running stack with.
Stack = ServedStack


@pytest.fixture(scope="session")
def webhook_database_url(postgres_server: str) -> str:
    url = migrated_database(postgres_server, WEBHOOK_DATABASE)
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture(scope="session")
def stack(webhook_database_url: str, key_ring_text: str) -> Iterator[Stack]:
    with served_stack(
        webhook_database_url, key_ring_text, webhook_retry_base_seconds=RETRY_BASE_SECONDS
    ) as served:
        yield served


@pytest.fixture
async def stack_sessions(
    webhook_database_url: str,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(webhook_database_url)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


async def _new_caller(sessions: async_sessionmaker[AsyncSession], *scopes: str) -> str:
    async with sessions() as session, session.begin():
        _, key = await create_caller(session, f"wh-{uuid.uuid4().hex[:12]}", list(scopes), [])
    return key


@pytest.fixture
async def caller_key(stack_sessions: async_sessionmaker[AsyncSession]) -> str:
    return await _new_caller(stack_sessions, "provision", "read")


@pytest.fixture
async def admin_key(stack_sessions: async_sessionmaker[AsyncSession]) -> str:
    return await _new_caller(stack_sessions, "admin")


@pytest.fixture
async def register(stack: Stack, admin_key: str) -> AsyncIterator[RegisterWebhook]:
    """``await register(url, events)`` → the created endpoint (with its secret); every
    endpoint a test registers is removed after it, so later tests' events skip it."""
    made: list[str] = []
    async with httpx.AsyncClient(base_url=stack.service_url, timeout=30) as client:

        async def make(url: str, events: list[str]) -> dict[str, Any]:
            answer = await client.post(
                "/v1/webhooks", headers=bearer(admin_key), json={"url": url, "events": events}
            )
            assert answer.status_code == 201, answer.text
            created: dict[str, Any] = answer.json()
            made.append(str(created["id"]))
            return created

        yield make
        for endpoint_id in made:
            await client.delete(f"/v1/webhooks/{endpoint_id}", headers=bearer(admin_key))
