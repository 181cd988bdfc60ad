"""The sandbox and tsprov as real HTTP servers on a database of the suite's own: one consent
through them leaves a key for the doctor's identity checks to look at."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# api, browser and sandbox are fixtures: per-test clients of the stack, shared across suites.
from tests.helpers.stack import ServedStack, api, browser, migrated_database, sandbox, served_stack  # noqa: F401

DOCTOR_DATABASE = "tsprov_doctor"
# What this suite's tests annotate the running stack with.
Stack = ServedStack


@pytest.fixture(scope="session")
def doctor_database_url(postgres_server: str) -> str:
    return migrated_database(postgres_server, DOCTOR_DATABASE)


@pytest.fixture(scope="session")
def stack(doctor_database_url: str, key_ring_text: str) -> Iterator[Stack]:
    with served_stack(doctor_database_url, key_ring_text) as served:
        yield served
