"""The sandbox and tsprov as real HTTP servers on a database of the suite's own: one consent
through them leaves a key for the doctor's identity checks to look at."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from sandbox.app import create_app as create_sandbox
from service.main import create_app
from service.settings import Settings
from tests.helpers.servers import ThreadedServer

# api, browser and sandbox are fixtures: per-test clients of the stack, shared across suites.
from tests.helpers.stack import TEST_CREDENTIALS, LateApp, api, browser, migrated_database, sandbox  # noqa: F401

DOCTOR_DATABASE = "tsprov_doctor"


@dataclass
class Stack:
    service_url: str
    sandbox_url: str
    database_url: str
    settings: Settings


@pytest.fixture(scope="session")
def doctor_database_url(postgres_server: str) -> str:
    return migrated_database(postgres_server, DOCTOR_DATABASE)


@pytest.fixture(scope="session")
def stack(doctor_database_url: str, key_ring_text: str) -> Iterator[Stack]:
    late = LateApp()
    service = ThreadedServer(late)
    sandbox_settings = TEST_CREDENTIALS.sandbox_settings([f"{service.url}/callback"])
    with ThreadedServer(create_sandbox(sandbox_settings)) as sandbox_server:
        settings = TEST_CREDENTIALS.service_settings(
            doctor_database_url, service.url, sandbox_server.url, key_ring_text
        )
        late.app = create_app(settings)
        with service:
            yield Stack(service.url, sandbox_server.url, doctor_database_url, settings)
