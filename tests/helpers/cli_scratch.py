"""What the CLI tests share: running ``tsprov`` and reading how it failed."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from service.ops.devdb import ensure_database, with_database

# Roles are shared by every database on the server, and other test sessions may run beside
# this one: every name made here carries the process id.
PREFIX = f"tsprov_cli_{os.getpid()}"

RunTsprov = Callable[..., subprocess.CompletedProcess[str]]


@dataclass
class Scratch:
    """Databases and roles made by this session; all dropped when it ends."""

    server: str
    databases: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    counter: Iterator[int] = field(default_factory=itertools.count)

    def database(self) -> str:
        """A new, empty database's URL."""
        name = f"{PREFIX}_{next(self.counter)}"
        url = with_database(self.server, name)
        self.databases.append(name)
        asyncio.run(ensure_database(url, recreate=True))
        return url

    def role(self) -> str:
        """A role name nobody else uses; the role itself is made by ``tsprov migrate``."""
        name = f"{PREFIX}_role_{next(self.counter)}"
        self.roles.append(name)
        return name

    async def drop_all(self) -> None:
        connection = await asyncpg.connect(with_database(self.server, "postgres"), timeout=10)
        try:
            # Dropping the databases first takes the roles' privileges with them.
            for name in self.databases:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for name in self.roles:
                await connection.execute(f'DROP ROLE IF EXISTS "{name}"')
        finally:
            await connection.close()


def assert_one_line_failure(process: subprocess.CompletedProcess[str]) -> str:
    """The process failed with exactly one ``tsprov:`` line on stderr; that line."""
    assert process.returncode == 1, process.stderr
    lines = process.stderr.splitlines()
    assert len(lines) == 1, process.stderr
    assert lines[0].startswith("tsprov: ")
    return lines[0]


def fetch_value(url: str, query: str) -> Any:
    """One value from ``query``, committed, on its own connection (the commands see it)."""

    async def fetch() -> Any:
        connection = await asyncpg.connect(url, timeout=10)
        try:
            return await connection.fetchval(query)
        finally:
            await connection.close()

    return asyncio.run(fetch())
