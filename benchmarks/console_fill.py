"""The console benchmark's data: the audit fill of ``audit_bench`` plus requests, users,
grants and callers shaped like a busy deployment, written with COPY.

Users and callers carry the names the audit fill's events use (``user{n}@example.com``,
``service-{n}``), so filters on either find the same people in both tables.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from benchmarks.audit_bench import SPAN, fill
from service.grants.status import GrantMode, GrantStatus
from service.provisioning.status import RequestStatus

USERS = 5000
CALLERS = 20
COPY_CHUNK = 20_000
# Most requests end joined; the rest spread over the other statuses.
STATUS_WEIGHTS = {
    RequestStatus.JOINED: 70,
    RequestStatus.EXPIRED: 10,
    RequestStatus.CANCELLED: 6,
    RequestStatus.FAILED: 4,
    RequestStatus.AWAITING_CONSENT: 5,
    RequestStatus.READY: 3,
    RequestStatus.CLAIMED: 2,
}
REQUEST_COLUMNS = (
    "id", "user_id", "status", "hostname", "ephemeral", "preauthorized", "tags", "grant_id",
    "key_id", "device_node_id", "device_name", "device_joined_at", "created_by", "created_at",
    "updated_at",
)  # fmt: skip
GRANT_COLUMNS = (
    "id", "user_id", "mode", "status", "login_name", "scope", "created_at", "updated_at",
)  # fmt: skip


def user_name(n: int) -> str:
    return f"user{n}@example.com"


def _requests(count: int, end: datetime, rng: random.Random) -> Iterator[tuple[Any, Any]]:
    """Requests spread evenly over the audit fill's 90 days; a joined one has a grant."""
    statuses, weights = list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values())
    step = SPAN / count
    for n in range(count):
        created = end - SPAN + step * n
        user = user_name(rng.randrange(USERS))
        status = rng.choices(statuses, weights)[0]
        joined = status == RequestStatus.JOINED
        grant = None
        if joined:
            grant = (uuid.uuid4(), user, GrantMode.ONCE.value, GrantStatus.USED.value, user,
                     "auth_keys:create:once", created, created + timedelta(minutes=2))  # fmt: skip
        request: tuple[Any, ...] = (
            uuid.uuid4(), user, status.value, f"host-{n}", False, False, [],
            grant[0] if grant else None, f"k{n}" if joined else None,
            f"n{n}" if joined else None, f"host-{n}.tail.ts.net" if joined else None,
            created + timedelta(minutes=3) if joined else None,
            f"service-{rng.randrange(CALLERS)}", created, created + timedelta(minutes=3),
        )  # fmt: skip
        yield request, grant


async def _copy_requests(connection: asyncpg.Connection, count: int, end: datetime) -> None:
    rows = _requests(count, end, random.Random(19))
    while chunk := [row for _, row in zip(range(COPY_CHUNK), rows, strict=False)]:
        grants = [grant for _, grant in chunk if grant is not None]
        await connection.copy_records_to_table(
            "consent_grant", records=grants, columns=GRANT_COLUMNS
        )
        await connection.copy_records_to_table(
            "provisioning_request", records=[request for request, _ in chunk],
            columns=REQUEST_COLUMNS,
        )  # fmt: skip


async def _copy_people(connection: asyncpg.Connection, end: datetime) -> None:
    users = [
        (uuid.uuid4(), user_name(n), user_name(n), end - SPAN, end - SPAN) for n in range(USERS)
    ]
    await connection.copy_records_to_table(
        "user_account",
        records=users,
        columns=("id", "user_id", "tailscale_login", "created_at", "updated_at"),
    )
    callers: list[tuple[Any, ...]] = [
        (uuid.uuid4(), f"service-{n}", os.urandom(32), ["provision", "read"], [], end - SPAN)
        for n in range(CALLERS)
    ]
    await connection.copy_records_to_table(
        "caller",
        records=callers,
        columns=("id", "name", "key_hash", "scopes", "user_patterns", "created_at"),
    )


async def fill_console(dsn: str, events: int, requests: int, end: datetime) -> None:
    """The audit events and their seals (``audit_bench.fill``), then everything else."""
    await fill(dsn, events, end)
    connection = await asyncpg.connect(dsn)
    try:
        await _copy_people(connection, end)
        await _copy_requests(connection, requests, end)
        for table in ("user_account", "caller", "consent_grant", "provisioning_request"):
            await connection.execute(f"VACUUM ANALYZE {table}")
    finally:
        await connection.close()


async def filled_sizes(dsn: str) -> tuple[int, int] | None:
    """(audit events, requests) of an existing fill, or None when there is none."""
    try:
        connection = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        return None
    try:
        events = await connection.fetchval("SELECT count(*) FROM audit_event")
        requests = await connection.fetchval("SELECT count(*) FROM provisioning_request")
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await connection.close()
    return int(events), int(requests)
