"""A stack of its own for the fuzzer: the sandbox and tsprov as real servers, on a database
nobody else uses (``tsprov_fuzz``), and an admin caller key (admin holds every scope)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from sandbox.app import create_app as create_sandbox
from service.main import create_app
from service.settings import Settings
from tests.helpers.callers import caller_key_at
from tests.helpers.servers import ThreadedServer
from tests.helpers.stack import TEST_CREDENTIALS, LateApp, migrated_database

FUZZ_DATABASE = "tsprov_fuzz"


@dataclass(frozen=True)
class FuzzTarget:
    url: str
    auth: dict[str, str]
    settings: Settings


async def _admin_key(database_url: str) -> str:
    return await caller_key_at(database_url, f"fuzz-{uuid.uuid4().hex[:8]}", ["admin"])


@pytest.fixture(scope="session")
def fuzz_target(postgres_server: str, key_ring_text: str) -> Iterator[FuzzTarget]:
    database_url = migrated_database(postgres_server, FUZZ_DATABASE)
    late = LateApp()
    service = ThreadedServer(late)
    sandbox_settings = TEST_CREDENTIALS.sandbox_settings([f"{service.url}/callback"])
    with ThreadedServer(create_sandbox(sandbox_settings)) as sandbox_server:
        # The fuzzer sends thousands of requests without a key on purpose, from one address:
        # the refusal throttle (tested on its own, security.md 36) would answer them all 429
        # and hide whether each route checks its key.
        settings = TEST_CREDENTIALS.service_settings(
            database_url,
            service.url,
            sandbox_server.url,
            key_ring_text,
            refusal_burst=1_000_000,
            refusal_per_second=1_000_000,
        )
        late.app = create_app(settings)
        with service:
            key = asyncio.run(_admin_key(database_url))
            yield FuzzTarget(service.url, {"Authorization": f"Bearer {key}"}, settings)
