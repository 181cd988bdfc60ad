"""Database failures answer what they mean: an outage 503, a bad value 422, a clash 409, a bug
500; none of them echoes the statement, its parameters or the database's message."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.main import create_app
from service.state import AppContext
from service.web.problem import Problem
from tests.helpers.steps import Sessions

Failure = Callable[[], Awaitable[object]]
Answer = Callable[[Failure], Awaitable[httpx.Response]]
# Words from the failing statements and the database's messages: none may reach a caller.
LEAKS = ("select", "pg_sleep", "division", "no_such_table", "probe", "sqlalchemy", "asyncpg")


@pytest.fixture
async def answer_when(context: AppContext) -> AsyncIterator[Answer]:
    """The app with one test-only route that runs the given failure; its answer."""
    app = create_app(context=context)
    failures: list[Failure] = []

    async def probe() -> None:
        await failures[-1]()

    app.add_api_route("/v1/probe", probe, methods=["POST"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tsprov.test") as client:

        async def answer(failure: Failure) -> httpx.Response:
            failures.append(failure)
            return await client.post("/v1/probe")

        yield answer


def run(sessions: Sessions, *statements: str) -> Failure:
    async def failure() -> None:
        async with sessions() as session:
            for statement in statements:
                await session.execute(text(statement))

    return failure


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = Problem.model_validate(response.json())
    assert (problem.status, problem.code) == (status, code)
    assert not any(leak in response.text.lower() for leak in LEAKS), response.text


@pytest.mark.parametrize(
    "statements",
    [
        # statement_timeout cancelling a slow query (57014)
        ("SET LOCAL statement_timeout = 1", "SELECT pg_sleep(1)"),
        ("DO $$BEGIN RAISE EXCEPTION 'probe-deadlock' USING ERRCODE = '40P01'; END$$",),
        ("DO $$BEGIN RAISE EXCEPTION 'probe-race' USING ERRCODE = '40001'; END$$",),
        ("DO $$BEGIN RAISE EXCEPTION 'probe-lock' USING ERRCODE = '55P03'; END$$",),
        ("DO $$BEGIN RAISE EXCEPTION 'probe-full' USING ERRCODE = '53300'; END$$",),
    ],
    ids=["statement-timeout", "deadlock", "serialization", "lock-not-available", "too-many"],
)
async def test_a_slow_or_contended_database_is_503_with_retry_after(
    answer_when: Answer, sessions: Sessions, statements: tuple[str, ...]
) -> None:
    response = await answer_when(run(sessions, *statements))
    assert_problem(response, 503, "database_unavailable")
    assert response.headers["retry-after"] == "1"


async def test_a_connection_killed_mid_query_is_503(answer_when: Answer, database_url: str) -> None:
    # Its own engine: terminating the test's shared connection would end the test's transaction.
    engine = create_async_engine(database_url)

    async def killed() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))

    try:
        assert_problem(await answer_when(killed), 503, "database_unavailable")
    finally:
        await engine.dispose()


async def test_a_refused_connection_is_503(answer_when: Answer) -> None:
    engine = create_async_engine("postgresql+asyncpg://tsprov@127.0.0.1:9/none")

    async def refused() -> None:
        async with engine.connect():
            pass

    try:
        assert_problem(await answer_when(refused), 503, "database_unavailable")
    finally:
        await engine.dispose()


async def test_an_exhausted_pool_is_503_within_its_timeout(
    answer_when: Answer, database_url: str
) -> None:
    engine = create_async_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=0.1)

    async def exhausted() -> None:
        async with engine.connect(), engine.connect():
            pass

    try:
        assert_problem(await answer_when(exhausted), 503, "database_unavailable")
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "statement",
    ["SELECT 1/0", "SELECT CAST('2026-02-30' AS date)", "SELECT CAST('x' AS integer)"],
)
async def test_a_value_the_database_refuses_is_422(
    answer_when: Answer, sessions: Sessions, statement: str
) -> None:
    assert_problem(await answer_when(run(sessions, statement)), 422, "validation_failed")


async def test_a_parameter_the_driver_cannot_encode_is_422(
    answer_when: Answer, sessions: Sessions
) -> None:
    # Midnight on 1 January of year 1 at +01:00 is in year 0 in UTC, which nothing can hold.
    too_early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))

    async def encode() -> None:
        async with sessions() as session:
            await session.execute(text("SELECT CAST(:at AS timestamptz)"), {"at": too_early})

    assert_problem(await answer_when(encode), 422, "validation_failed")


async def test_a_duplicate_is_409_conflict(answer_when: Answer, sessions: Sessions) -> None:
    duplicate = run(
        sessions,
        "CREATE TEMPORARY TABLE probe_once (id integer PRIMARY KEY)",
        "INSERT INTO probe_once VALUES (7)",
        "INSERT INTO probe_once VALUES (7)",
    )
    response = await answer_when(duplicate)
    assert_problem(response, 409, "conflict")
    assert "(7)" not in response.text


async def test_any_other_database_error_is_500_and_only_its_class_is_logged(
    answer_when: Answer, sessions: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tsprov")
    response = await answer_when(run(sessions, "SELECT secret FROM no_such_table"))
    assert_problem(response, 500, "internal_error")
    logged = " ".join(record.getMessage() for record in caplog.records).lower()
    assert "42P01" in logged.upper()
    assert "no_such_table" not in logged
    assert "secret" not in logged
