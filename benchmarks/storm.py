"""The refresh storm: many claims at once on grants whose access tokens are all due.

Requests are made first, ``per_user`` for each user; then every user's access token is made
due (as the tests do, through the grant's expiry column), the sandbox's request log is
emptied, and all the claims go out at once, alternating between two replicas. A refresh
token is single-use, so each grant must be refreshed exactly once across both replicas.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

import httpx

from benchmarks.load import REQUEST_BODY
from benchmarks.preparation import bearer
from benchmarks.tsprov_hooks import expire_access_tokens

CREATE_CONCURRENCY = 16


@dataclass(frozen=True)
class StormResult:
    users: int
    claims: int
    succeeded: int
    unavailable: int
    other_errors: int
    refreshes: int
    seconds: float
    # "status code" of each failed claim, e.g. "503 service_unavailable", and how many
    failures: Counter[str]


async def _create_requests(
    clients: list[httpx.AsyncClient], key: str, users: list[str], per_user: int
) -> list[str]:
    limit = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def create(index: int) -> str:
        async with limit:
            answer = await clients[index % 2].post(
                f"/v1/users/{users[index % len(users)]}/provisioning-requests",
                headers=bearer(key),
                json=REQUEST_BODY,
            )
        answer.raise_for_status()
        request_id: str = answer.json()["id"]
        return request_id

    return await asyncio.gather(*(create(i) for i in range(len(users) * per_user)))


async def _claim(client: httpx.AsyncClient, key: str, request_id: str) -> tuple[int, str]:
    """The claim's status, and for a failure its problem code."""
    try:
        answer = await client.post(
            f"/v1/provisioning-requests/{request_id}/claim", headers=bearer(key)
        )
    except httpx.HTTPError as exc:
        return -1, type(exc).__name__
    if answer.status_code == 200:
        return 200, ""
    try:
        code = str(answer.json().get("code", ""))
    except ValueError:
        code = "(not JSON)"
    return answer.status_code, code


async def _refreshes(sandbox_url: str) -> int:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as sandbox:
        log = await sandbox.get("/sandbox/requests", params={"grant_type": "refresh_token"})
        log.raise_for_status()
        return len(log.json()["requests"])


async def refresh_storm(
    replicas: list[str], sandbox_url: str, database_url: str, key: str, users: list[str],
    per_user: int,
) -> StormResult:  # fmt: skip
    clients = [httpx.AsyncClient(base_url=url, timeout=60) for url in replicas]
    try:
        request_ids = await _create_requests(clients, key, users, per_user)
        await expire_access_tokens(database_url, users)
        async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as sandbox:
            (await sandbox.delete("/sandbox/requests")).raise_for_status()
        started = time.perf_counter()
        answers = await asyncio.gather(
            *(_claim(clients[i % 2], key, rid) for i, rid in enumerate(request_ids))
        )
        seconds = time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()
    statuses = [status for status, _ in answers]
    return StormResult(
        users=len(users),
        claims=len(statuses),
        succeeded=statuses.count(200),
        unavailable=statuses.count(503),
        other_errors=len(statuses) - statuses.count(200) - statuses.count(503),
        refreshes=await _refreshes(sandbox_url),
        seconds=seconds,
        failures=Counter(f"{status} {code}" for status, code in answers if status != 200),
    )
