"""security.md item 20 with callers kept in memory: a key that worked a moment ago and is then
revoked or narrowed, by any means, is refused as soon as the change's notice reaches the
service: milliseconds after it commits, far inside the five seconds a kept caller lives, so
these tests fail if the notice is not what made the service forget."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.callers.store import create_caller, generate_caller_key
from service.ops import cli
from tests.conftest import bearer
from tests.helpers.steps import new_user
from tests.security.conftest import Stack


async def _new_caller(sessions: async_sessionmaker[AsyncSession], *scopes: str) -> tuple[str, str]:
    name = f"mem-{uuid.uuid4().hex[:12]}"
    async with sessions() as session, session.begin():
        _, key = await create_caller(session, name, list(scopes), [])
    return name, key


async def _proven(api: httpx.AsyncClient, key: str) -> None:
    """Past authentication twice: the second answer comes from what the service kept."""
    for _ in range(2):
        assert (await api.get(f"/v1/users/{new_user()}", headers=bearer(key))).status_code == 404


# The notice travels from Postgres to the service's listening connection while the commit's
# answer travels to the test: a request sent at once may overtake it by a fraction of this.
NOTICE_DELIVERY = 1.0


async def _answer_once_noticed(api: httpx.AsyncClient, path: str, key: str, status: int) -> int:
    """The status of ``path`` once it is ``status``, or when the notice's time is up."""
    deadline = asyncio.get_running_loop().time() + NOTICE_DELIVERY
    while True:
        answer = (await api.get(path, headers=bearer(key))).status_code
        if answer == status or asyncio.get_running_loop().time() > deadline:
            return answer
        await asyncio.sleep(0.01)


async def _refused_like_an_unknown_key(api: httpx.AsyncClient, key: str) -> None:
    path = f"/v1/users/{new_user()}"
    assert await _answer_once_noticed(api, path, key, 401) == 401
    answer = await api.get(path, headers=bearer(key))
    unknown = await api.get(path, headers=bearer(generate_caller_key()))
    assert answer.content == unknown.content


async def test_item_20_a_key_revoked_from_the_cli_is_refused_where_it_worked_once_announced(
    stack: Stack,
    api: httpx.AsyncClient,
    stack_sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name, key = await _new_caller(stack_sessions, "read")
    await _proven(api, key)
    monkeypatch.setenv("TSPROV_DATABASE_URL", stack.database_url)
    assert await asyncio.to_thread(cli.main, ["callers", "revoke", name]) == 0
    await _refused_like_an_unknown_key(api, key)


async def test_item_20_a_caller_changed_by_hand_in_the_database_is_seen_once_announced(
    api: httpx.AsyncClient, stack_sessions: async_sessionmaker[AsyncSession]
) -> None:
    name, key = await _new_caller(stack_sessions, "read", "audit")
    await _proven(api, key)
    assert (await api.get("/v1/audit/checkpoints", headers=bearer(key))).status_code == 200
    async with stack_sessions() as session, session.begin():
        await session.execute(
            text("UPDATE caller SET scopes = ARRAY['read'] WHERE name = :name"), {"name": name}
        )
    assert await _answer_once_noticed(api, "/v1/audit/checkpoints", key, 403) == 403
    async with stack_sessions() as session, session.begin():
        await session.execute(
            text("UPDATE caller SET revoked_at = now() WHERE name = :name"), {"name": name}
        )
    await _refused_like_an_unknown_key(api, key)


async def test_item_20_a_revocation_while_the_service_cannot_listen_is_still_seen(
    api: httpx.AsyncClient, stack_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The notice of a revocation made while the listening connection is cut goes nowhere:
    the service forgets what it kept when it loses the connection and when it gets it back."""
    name, key = await _new_caller(stack_sessions, "read")
    _, other_key = await _new_caller(stack_sessions, "read")
    await _proven(api, key)
    await _proven(api, other_key)
    async with stack_sessions() as session, session.begin():
        cut = set(await session.scalars(LISTENERS))
        await session.execute(
            text("SELECT pg_terminate_backend(pid) FROM unnest(CAST(:p AS int[])) AS pid"),
            {"p": list(cut)},
        )
        await session.execute(
            text("UPDATE caller SET revoked_at = now() WHERE name = :name"), {"name": name}
        )
    assert cut
    await _listening_again(stack_sessions, cut)
    await _refused_like_an_unknown_key(api, key)
    assert (await api.get(f"/v1/users/{new_user()}", headers=bearer(other_key))).status_code == 404


LISTENERS = text(
    "SELECT pid FROM pg_stat_activity"
    " WHERE datname = current_database() AND application_name LIKE 'tsprov-%'"
)


async def _listening_again(sessions: async_sessionmaker[AsyncSession], cut: set[int]) -> None:
    for _ in range(200):
        async with sessions() as session:
            now = set(await session.scalars(LISTENERS))
        if now - cut:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the service did not listen again within 10 s")
