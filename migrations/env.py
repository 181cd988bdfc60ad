"""Alembic environment: async, URL from tsprov's settings (or the caller's connection)."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from service import models  # noqa: F401  (registers the tables on Base.metadata)
from service.db import Base

config = context.config
# Only `alembic` run by hand reads alembic.ini; `tsprov migrate` builds its config in code and
# leaves logging to the caller.
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url, hide_parameters=True)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.attributes.get("database_url")
    if url is None:
        from service.settings import Settings

        url = Settings(env="development").database_url
    url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    asyncio.run(_run_async(url))


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `tsprov migrate`")
run_online()
