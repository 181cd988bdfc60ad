"""The Postgres server the benchmarks use, and the databases they make and drop on it."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from benchmarks.tsprov_hooks import PostgresServer, ensure_database, find_server, with_database

ROOT = Path(__file__).resolve().parent.parent


def resolve_server() -> PostgresServer:
    """The server the tests use: TSPROV_DATABASE_URL's, else the one tsprov's dev tools find."""
    configured = os.environ.get("TSPROV_DATABASE_URL")
    if not configured:
        return find_server(ROOT)
    parts = urlsplit(configured.replace("postgresql+asyncpg://", "postgresql://", 1))
    return PostgresServer(urlunsplit((parts.scheme, parts.netloc, "", parts.query, "")))


def asyncpg_url(url: str) -> str:
    """The URL as SQLAlchemy's asyncpg dialect wants it."""
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


async def fresh_database(server_url: str, name: str) -> str:
    """Database ``name`` on the server, dropped and created anew; its postgresql:// URL."""
    url = with_database(server_url, name)
    await ensure_database(url, recreate=True)
    return url


async def drop_database(server_url: str, name: str) -> None:
    connection = await asyncpg.connect(with_database(server_url, "postgres"), timeout=10)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def serving_login(database_url: str, login: str, app_role: str = "tsprov_app") -> str:
    """The URL for ``login``, a login role in ``app_role``: production serves as no superuser.

    ``tsprov migrate`` made ``app_role``; the login is the cluster's, so it is made once.
    """
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", login)
        if not exists:
            await connection.execute(f'CREATE ROLE "{login}" LOGIN IN ROLE "{app_role}"')
    finally:
        await connection.close()
    parts = urlsplit(database_url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{login}@{host}", parts.path, parts.query, ""))


async def analyze(database_url: str) -> None:
    """Table statistics, as autovacuum gathers them on its own soon after a table fills.

    A server run with autovacuum off (as some CI machines are) never gathers any: the planner
    then guesses, and may pick any index that can serve a statement.
    """
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
