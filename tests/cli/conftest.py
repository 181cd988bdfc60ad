"""CLI fixtures: databases and roles of this session's own, and ``tsprov`` as a subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.ops.migrate import upgrade_head
from tests.helpers.cli_scratch import RunTsprov, Scratch


@pytest.fixture(scope="session")
def scratch(postgres_server: str) -> Iterator[Scratch]:
    made = Scratch(postgres_server)
    yield made
    asyncio.run(made.drop_all())


@pytest.fixture
def fresh_database(scratch: Scratch) -> str:
    """An empty database, not migrated."""
    return scratch.database()


@pytest.fixture
def app_role(scratch: Scratch) -> str:
    return scratch.role()


@pytest.fixture(scope="session")
def cli_database(scratch: Scratch) -> str:
    """A migrated database the command tests share (they add callers, never remove any)."""
    url = scratch.database()
    upgrade_head(url, scratch.role())
    return url


@pytest.fixture(scope="session")
def outside_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory with no alembic.ini and no migrations/, as in the container."""
    return tmp_path_factory.mktemp("cwd")


@pytest.fixture(scope="session")
def run_tsprov(outside_checkout: Path) -> RunTsprov:
    """``run_tsprov("callers", "list", TSPROV_DATABASE_URL=…)`` → the finished process."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TSPROV_")}

    def run(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "service", *args],
            cwd=outside_checkout,
            env={**inherited, **settings},
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )

    return run
