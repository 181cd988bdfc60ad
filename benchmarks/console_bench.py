"""The operators' console at scale: 100k provisioning requests and 1M audit events, then each
/console page timed through the real app against a bare floor endpoint doing the same SQL.

    .venv/bin/python -m benchmarks.console_bench [--events 1000000] [--requests 100000]
        [--runs 15] [--reuse]

Uses the database ``tsprov_console_bench`` (recreated unless ``--reuse`` finds a fill of the
same size) on the server the tests use. tsprov is built by its own factory with identity
headers on and reached in-process as an operator signed in through Serve; the floor
(``console_floor.py``) runs the page's SQL by hand and answers JSON. Each figure is the
median of ``--runs`` after a warm-up; the ratio is tsprov ÷ floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

import asyncpg
import httpx

from benchmarks.audit_bench import SPAN
from benchmarks.console_fill import fill_console, filled_sizes
from benchmarks.console_floor import floor_app
from benchmarks.database import resolve_server
from benchmarks.tsprov_hooks import ensure_database, generate_key_entry, in_process_service
from benchmarks.tsprov_hooks import with_database as database_url
from service.audit.query import AuditFilter, Position
from service.audit.query import encode_cursor as audit_cursor
from service.console.operators.pages import VERIFY_RECENT_EVENTS
from service.ops.migrate import upgrade_head
from service.provisioning.reading import encode_cursor as request_cursor

DATABASE = "tsprov_console_bench"
OPERATOR = "ops@example.com"
SERVE = {"Tailscale-User-Login": OPERATOR, "Tailscale-User-Name": "Ops"}


@dataclass(frozen=True)
class Figure:
    label: str
    page: str  # the /console address
    floor: str  # the floor's address for the same job


async def median_ms(client: httpx.AsyncClient, path: str, runs: int, **headers: str) -> float:
    for _ in range(2):  # warm-up: plans prepared, pages of the index in the cache
        answer = await client.get(path, headers=headers)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        await client.get(path, headers=headers)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def _query(**values: str) -> str:
    return urlencode(values)


NEWEST_AT = {
    None: "SELECT created_at, id FROM provisioning_request "
    "ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1",
    "joined": "SELECT created_at, id FROM provisioning_request WHERE status = 'joined' "
    "ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1",
}


async def _deep_request(
    connection: asyncpg.Connection, offset: int, status: str | None
) -> asyncpg.Record:
    row = await connection.fetchrow(NEWEST_AT[status], offset)
    assert row is not None
    return row


async def _timeline_request(connection: asyncpg.Connection) -> asyncpg.Record:
    """A joined request, given the events of its life (the fill's events name no request)."""
    row = await connection.fetchrow(
        "SELECT * FROM provisioning_request WHERE status = 'joined' ORDER BY created_at DESC "
        "OFFSET 1000 LIMIT 1"
    )
    assert row is not None
    steps = [
        ("PROVISIONING_REQUEST", "CREATE", str(row["id"])),
        ("GRANT", "CREATE", str(row["grant_id"])),
        ("API_KEY", "CREATE", row["key_id"]),
        ("NODE", "CREATE", row["device_node_id"]),
    ]
    already = await connection.fetchval(
        "SELECT count(*) FROM audit_event WHERE user_id = $1 AND target ->> 'id' = $2",
        row["user_id"], str(row["id"]),
    )  # fmt: skip
    if already:  # a reused fill has them from its first run
        return row
    actor = {"id": "service-1", "type": "OAUTH_CLIENT", "loginName": "service-1",
             "displayName": "service-1", "tags": []}  # fmt: skip
    for index, (kind, action, target) in enumerate(steps):
        await connection.execute(
            "INSERT INTO audit_event (id, event_time, event_group_id, origin, actor, target, "
            "action, event_name, action_details, error, user_id) VALUES ($1, $2, $3, "
            "'CONFIG_API', $4::jsonb, $5::jsonb, $6, $7, '', '', $8)",
            uuid.uuid4(), row["created_at"] + timedelta(seconds=index), str(uuid.uuid4()),
            json.dumps(actor),
            json.dumps({"id": target, "name": row["user_id"], "type": kind,
                        "isEphemeral": False, "property": ""}),
            action, f"{kind}.{action}", row["user_id"],
        )  # fmt: skip
    return row


async def figures(url: str, end: datetime) -> list[Figure]:
    """Every page, its first page and a deep one through its cursor, with the floor's twin."""
    connection = await asyncpg.connect(url)
    try:
        total = await connection.fetchval("SELECT count(*) FROM provisioning_request")
        joined = await connection.fetchval(
            "SELECT count(*) FROM provisioning_request WHERE status = 'joined'"
        )
        deep = await _deep_request(connection, total // 2, None)
        deep_joined = await _deep_request(connection, joined // 2, "joined")
        shown = await _timeline_request(connection)
        half = await connection.fetchval("SELECT count(*) / 2 FROM audit_event")
        middle = await connection.fetchrow(
            "SELECT event_time, seq FROM audit_event ORDER BY event_time, seq OFFSET $1 LIMIT 1",
            half,
        )
    finally:
        await connection.close()
    assert middle is not None
    day = {"start": (end - timedelta(days=1)).isoformat(), "end": end.isoformat()}
    span = {"start": (end - SPAN).isoformat(), "end": end.isoformat()}
    span_filter = AuditFilter(end - SPAN, end)
    cursor = audit_cursor(span_filter, Position(middle["event_time"], middle["seq"]))
    window = {"start": (shown["created_at"] - timedelta(seconds=30)).isoformat(),
              "end": (shown["updated_at"] + timedelta(seconds=30)).isoformat()}  # fmt: skip
    targets = "&".join(f"target={t}" for t in (shown["id"], shown["grant_id"], shown["key_id"],
                                                  shown["device_node_id"]))  # fmt: skip
    return [
        Figure("requests, first page", "/console", "/requests"),
        Figure(f"requests, {total // 2:,} in",
               "/console?" + _query(cursor=request_cursor(deep["created_at"], deep["id"])),
               "/requests?" + _query(after=deep["created_at"].isoformat(), id=str(deep["id"]))),
        Figure("requests joined, first page", "/console?status=joined", "/requests?status=joined"),
        Figure(f"requests joined, {joined // 2:,} in",
               "/console?" + _query(status="joined", cursor=request_cursor(
                   deep_joined["created_at"], deep_joined["id"])),
               "/requests?" + _query(status="joined", after=deep_joined["created_at"].isoformat(),
                                     id=str(deep_joined["id"]))),
        Figure("a request's timeline", f"/console/requests/{shown['id']}",
               "/timeline?" + _query(user=shown["user_id"], **window) + "&" + targets),
        Figure("users, first page", "/console/users", "/users"),
        Figure("users, 2,500 in", "/console/users?cursor=user3250%40example.com",
               "/users?after=user3250%40example.com"),
        Figure("callers", "/console/callers", "/callers"),
        Figure("audit, last day, first page", "/console/audit?" + _query(**day),
               "/audit?" + _query(**day, after=day["start"], seq="0")),
        Figure(f"audit, 90 days, {half:,} in", "/console/audit?" + _query(**span, cursor=cursor),
               "/audit?" + _query(**span, after=middle["event_time"].isoformat(),
                                  seq=str(middle["seq"]))),
        Figure(f"verify, newest {VERIFY_RECENT_EVENTS:,} events", "/console/audit/verify",
               f"/verify?last={VERIFY_RECENT_EVENTS}"),
        Figure("health", "/console/health", "/health"),
    ]  # fmt: skip


def environment(url: str) -> dict[str, str]:
    """A development tsprov with Serve's headers trusted from loopback, as the stand-in sends."""
    return {
        "TSPROV_ENV": "development",
        "TSPROV_DATABASE_URL": url,
        "TSPROV_PUBLIC_URL": "http://127.0.0.1:8000",
        "TSPROV_TAILSCALE_LOGIN_URL": "http://127.0.0.1:9",
        "TSPROV_TAILSCALE_API_URL": "http://127.0.0.1:9",
        "TSPROV_OAUTH_CLIENT_ID": "bench-client",
        "TSPROV_OAUTH_CLIENT_SECRET": "bench-client-secret",
        "TSPROV_ENCRYPTION_KEYS": generate_key_entry(),
        "TSPROV_IDENTITY_HEADERS": "tailscale-serve",
        "TSPROV_CONSOLE_ADMINS": OPERATOR,
    }


@asynccontextmanager
async def floor_client(url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = floor_app(url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


async def measure(url: str, end: datetime, runs: int) -> None:
    shown = await figures(url, end)
    rows = []
    async with in_process_service(environment(url)) as (tsprov, _), floor_client(url) as floor:
        for figure in shown:
            page = await median_ms(tsprov, figure.page, runs, **SERVE)
            least = await median_ms(floor, figure.floor, runs)
            rows.append((figure.label, least, page))
            print(f"  {figure.label}: {page:.1f} ms (floor {least:.1f} ms)", flush=True)
    print("\n| page | floor (ms) | /console (ms) | /console ÷ floor |\n|---|---|---|---|")
    for label, least, page in rows:
        print(f"| {label} | {least:.1f} | {page:.1f} | {page / least:.1f}x |")


async def filled_end(url: str, events: int, requests: int, reuse: bool) -> datetime:
    """The fill's last moment: of the existing fill with ``--reuse``, else of a fresh one."""
    found = await filled_sizes(url)
    # A run adds the few events of the request whose timeline it shows.
    if reuse and found and found[1] == requests and events <= found[0] <= events + 10:
        print("  reusing the existing fill")
    else:
        await ensure_database(url, recreate=True)
        await asyncio.to_thread(upgrade_head, url)
        started = time.perf_counter()
        await fill_console(
            url, events, requests, datetime.now().astimezone().replace(microsecond=0)
        )
        print(f"  filled in {time.perf_counter() - started:.0f} s")
    connection = await asyncpg.connect(url)
    try:
        end: datetime = await connection.fetchval(
            "SELECT max(created_at) FROM provisioning_request"
        )
    finally:
        await connection.close()
    return end.replace(microsecond=0) + timedelta(seconds=1)


async def run(server_url: str, events: int, requests: int, runs: int, reuse: bool) -> None:
    url = database_url(server_url, DATABASE)
    where = urlsplit(url)
    print(f"database {where.hostname}:{where.port}/{DATABASE}: {events:,} audit events, "
          f"{requests:,} requests; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    end = await filled_end(url, events, requests, reuse)
    await measure(url, end, runs)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15, help="runs per figure (median)")
    parser.add_argument("--reuse", action="store_true", help="keep a fill of the same size")
    arguments = parser.parse_args()
    server = resolve_server()
    try:
        asyncio.run(
            run(server.url, arguments.events, arguments.requests, arguments.runs, arguments.reuse)
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
