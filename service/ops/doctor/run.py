"""Run every check in order and print one line each; exit 1 when any check failed."""

from __future__ import annotations

import argparse
import asyncio

import httpx
from alembic.script import ScriptDirectory
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.db import create_engine, create_session_factory
from service.ops.app_register import AppRegisterError, admin_token
from service.ops.doctor.identity import check_identity_sources
from service.ops.doctor.local import (
    check_database,
    check_encryption_keys,
    check_settings,
    check_signing_key,
)
from service.ops.doctor.report import Check, Outcome
from service.ops.doctor.upstream import check_api, check_app, check_login, observer_token
from service.ops.migrate import alembic_config
from service.settings import Settings


def load_settings() -> tuple[Settings, Settings | ValidationError]:
    """Settings to check with, and what ``tsprov serve`` would make of the environment."""
    try:
        served = Settings()
    except ValidationError as exc:
        # Carry on with what development would accept, to check everything else.
        return Settings(env="development"), exc
    return served, served


def optional_admin_token() -> str | None:
    try:
        return admin_token()
    except AppRegisterError:
        return None


async def reachable_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession] | None:
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError):
        return None
    return create_session_factory(engine)


async def run_checks(
    settings: Settings, served: Settings | ValidationError, token: str | None
) -> list[Check]:
    """Every check, in the order an operator would fix them."""
    checks = check_settings(served)
    engine = create_engine(settings)
    head = ScriptDirectory.from_config(alembic_config(settings.database_url)).get_current_head()
    timeout = httpx.Timeout(
        settings.upstream_read_timeout_seconds, connect=settings.upstream_connect_timeout_seconds
    )
    try:
        checks += await check_database(engine, settings, str(head))
        sessions = await reachable_sessions(engine)
        checks.append(await check_encryption_keys(settings, sessions))
        checks.append(check_signing_key(settings))
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http:
            checks.append(await check_login(http, settings))
            checks.append(await check_api(http, settings))
            checks.append(await check_app(http, settings, token))
            observer, observer_access, granted = await observer_token(http, settings)
            checks.append(observer)
            checks += await check_identity_sources(
                http, settings, observer_access, granted, sessions
            )
    finally:
        await engine.dispose()
    return checks


def run(_args: argparse.Namespace) -> int:
    settings, served = load_settings()
    checks = asyncio.run(run_checks(settings, served, optional_admin_token()))
    for check in checks:
        print(check.line())
    return 1 if any(check.outcome == Outcome.FAIL for check in checks) else 0
