"""Run Alembic migrations from code (the CLI, `tsprov dev` and the tests share this)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def alembic_config(database_url: str, app_role: str | None = None) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    if app_role:
        config.attributes["app_role"] = app_role
    return config


def upgrade_head(database_url: str, app_role: str | None = None) -> None:
    """``alembic upgrade head``; call it outside a running event loop."""
    command.upgrade(alembic_config(database_url, app_role), "head")
