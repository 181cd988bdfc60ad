"""Run Alembic migrations from code (the CLI, `tsprov dev` and the tests share this)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

import migrations
from service.ops.app_role import app_role_name, ensure_app_role

ROLE_LOCK = 0x7473_7072_6F76_2000
ROLE_ATTEMPTS = 5


def _migrations_dir() -> Path:
    """Where the installed ``migrations`` package keeps env.py and the revisions."""
    # The migrations ship inside the distribution, so `tsprov migrate` works from a wheel (the
    # container image) with no checkout and no alembic.ini beside it. __path__, not __file__:
    # an editable install made before the package had an __init__.py maps it as a namespace.
    for entry in migrations.__path__:
        if (Path(entry) / "env.py").is_file():
            return Path(entry).resolve()
    raise CommandError("the installed tsprov has no migrations/env.py; reinstall it")


def alembic_config(database_url: str, app_role: str | None = None) -> Config:
    """Alembic's settings, built here rather than read from alembic.ini."""
    config = Config()
    # Config options go through ConfigParser interpolation, where '%' is special.
    config.set_main_option("script_location", str(_migrations_dir()).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = database_url
    config.attributes["app_role"] = app_role_name(app_role)
    return config


def upgrade_head(database_url: str, app_role: str | None = None) -> None:
    """``alembic upgrade head``, then the app role; call it outside a running event loop."""
    config = alembic_config(database_url, app_role)
    command.upgrade(config, "head")
    asyncio.run(_set_up_app_role(database_url, config.attributes["app_role"]))


async def _set_up_app_role(database_url: str, role: str) -> None:
    url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(url, hide_parameters=True)
    try:
        for attempt in range(ROLE_ATTEMPTS):
            try:
                async with engine.begin() as connection:
                    await connection.execute(
                        text("SELECT pg_advisory_xact_lock(:k)"), {"k": ROLE_LOCK}
                    )
                    await ensure_app_role(connection, role)
                return
            except DBAPIError as exc:
                # Roles are cluster-wide while advisory locks are per database: a migration
                # of another database can update the same role at once. Take turns.
                if "concurrently" not in str(exc.orig) or attempt == ROLE_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
    finally:
        await engine.dispose()
