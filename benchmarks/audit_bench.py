"""Audit trail at scale: fill N chained events, then time window queries, export and verify.

    .venv/bin/python benchmarks/audit_bench.py [--events 1000000] [--runs 15]

Uses the database ``tsprov_bench`` (recreated) on the server the tests use: the one named by
``TSPROV_DATABASE_URL``, else the local or private server ``service.ops.devdb`` finds. Every
figure is printed next to a plain-SQL baseline measured in the same run, so the ratios hold
from one machine to another even when the absolute times do not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from service.audit.chain import verify_chain
from service.audit.events import GENESIS_HASH, canonical_content, chain_hash
from service.audit.query import AuditFilter, query_audit, stream_audit
from service.ops.devdb import PostgresServer, ensure_database, find_server, with_database
from service.ops.migrate import upgrade_head

ROOT = Path(__file__).resolve().parent.parent
# Ends in TSPROV_TEST_DB_SUFFIX when set, so parallel runs on one server keep apart.
DATABASE = f"tsprov_bench{os.environ.get('TSPROV_TEST_DB_SUFFIX', '')}"
SPAN = timedelta(days=90)
COPY_CHUNK = 50_000
COLUMNS = (
    "seq", "id", "event_time", "event_group_id", "origin", "actor", "target", "action",
    "event_name", "old", "new", "action_details", "error", "user_id",
)  # fmt: skip
SEAL_COLUMNS = ("position", "event_seq", "prev_hash", "hash", "canonical")
# A mix shaped like the catalogue: mostly request status changes, some grants, keys, nodes.
SHAPES = (
    ("PROVISIONING_REQUEST", "CREATE", "", None, {"status": "awaiting_consent"}),
    ("PROVISIONING_REQUEST", "UPDATE", "STATUS", "awaiting_consent", "ready"),
    ("PROVISIONING_REQUEST", "UPDATE", "STATUS", "ready", "claimed"),
    ("PROVISIONING_REQUEST", "UPDATE", "STATUS", "claimed", "joined"),
    ("GRANT", "CREATE", "", None, {"mode": "once", "status": "active"}),
    ("API_KEY", "CREATE", "", None, {"expiresAt": "2026-11-28T21:00:00.000000Z"}),
    ("NODE", "CREATE", "", None, None),
    ("FAILED_REQUEST", "READ", "", None, None),
)


def resolve_server() -> PostgresServer:
    """The server the tests use: TSPROV_DATABASE_URL's, else the one ``devdb`` finds."""
    configured = os.environ.get("TSPROV_DATABASE_URL")
    if not configured:
        return find_server(ROOT)
    parts = urlsplit(configured.replace("postgresql+asyncpg://", "postgresql://", 1))
    return PostgresServer(urlunsplit((parts.scheme, parts.netloc, "", parts.query, "")))


def synthetic_events(
    count: int, end: datetime, rng: random.Random
) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """Events and their seals, hashed by the service's own functions so verify accepts them."""
    step = SPAN / count
    prev = GENESIS_HASH
    for seq in range(1, count + 1):
        kind, action, prop, old, new = SHAPES[rng.randrange(len(SHAPES))]
        user = f"user{rng.randrange(5000)}@example.com"
        caller = f"service-{rng.randrange(20)}"
        values: dict[str, Any] = {
            "id": uuid.UUID(int=rng.getrandbits(128), version=4),
            "event_time": end - SPAN + step * seq,
            "event_group_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "origin": "CONFIG_API",
            "actor": {"id": caller, "type": "OAUTH_CLIENT", "loginName": caller,
                      "displayName": caller, "tags": []},
            "target": {"id": f"t{seq}", "name": user, "type": kind, "isEphemeral": False,
                       "property": prop},
            "action": action, "old": old, "new": new, "action_details": "", "error": "",
            "user_id": user, "event_name": f"{kind}.{action}",
        }  # fmt: skip
        canonical = canonical_content(values)
        digest = chain_hash(prev, canonical)
        yield _record(seq, values), (seq, seq, prev, digest, canonical)
        prev = digest


def _record(seq: int, values: dict[str, Any]) -> tuple[Any, ...]:
    row = {**values, "seq": seq}
    for column in ("actor", "target", "old", "new"):
        row[column] = None if row[column] is None else json.dumps(row[column])
    return tuple(row[column] for column in COLUMNS)


async def fill(dsn: str, count: int, end: datetime) -> float:
    started = time.perf_counter()
    connection = await asyncpg.connect(dsn)
    try:
        rows = synthetic_events(count, end, random.Random(6))
        while chunk := [row for _, row in zip(range(COPY_CHUNK), rows, strict=False)]:
            events = [event for event, _ in chunk]
            seals = [seal for _, seal in chunk]
            await connection.copy_records_to_table("audit_event", records=events, columns=COLUMNS)
            await connection.copy_records_to_table(
                "audit_seal", records=seals, columns=SEAL_COLUMNS
            )
            print(f"\r  filled {events[-1][0]:,} events", end="", flush=True)
        await connection.execute(
            "SELECT setval(pg_get_serial_sequence('audit_event', 'seq'), $1)", count
        )
        await connection.execute("VACUUM ANALYZE audit_event")
        await connection.execute("VACUUM ANALYZE audit_seal")
    finally:
        await connection.close()
    print()
    return time.perf_counter() - started


async def median_of(runs: int, action: Callable[[int], Awaitable[object]]) -> float:
    timings = []
    for run in range(runs):
        started = time.perf_counter()
        await action(run)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def hour_windows(end: datetime, runs: int) -> list[AuditFilter]:
    rng = random.Random(11)
    windows = []
    for _ in range(runs):
        start = end - SPAN + timedelta(hours=rng.randrange(int(SPAN / timedelta(hours=1)) - 1))
        windows.append(AuditFilter(start, start + timedelta(hours=1)))
    return windows


COUNT_WINDOW = text("SELECT count(*) FROM audit_event WHERE event_time >= :s AND event_time < :e")
ROWS_WINDOW = text(
    "SELECT * FROM audit_event WHERE event_time >= :s AND event_time < :e "
    "ORDER BY event_time, seq LIMIT 500"
)


async def baselines(
    session: AsyncSession, windows: list[AuditFilter], runs: int
) -> tuple[float, float]:
    """Plain SQL over the same windows: a count, and the rows without any shaping."""

    async def count(run: int) -> None:
        await session.scalar(COUNT_WINDOW, {"s": windows[run].start, "e": windows[run].end})

    async def raw_rows(run: int) -> None:
        await session.execute(ROWS_WINDOW, {"s": windows[run].start, "e": windows[run].end})

    return await median_of(runs, count), await median_of(runs, raw_rows)


async def window_figures(
    sessions: async_sessionmaker[AsyncSession], end: datetime, runs: int
) -> None:
    windows = hour_windows(end, runs)
    by_event = [AuditFilter(w.start, w.end, events=["NODE.CREATE"]) for w in windows]
    by_actor = [AuditFilter(w.start, w.end, actors=["service-3"]) for w in windows]
    async with sessions() as session:
        sizes = [len((await query_audit(session, w, limit=500)).logs) for w in windows]
        count, rows = await baselines(session, windows, runs)
        figures = {
            "one-hour window, whole hour in one page (limit 500)":
                await median_of(runs, lambda r: query_audit(session, windows[r], limit=500)),
            "one-hour window, first page (limit 100)":
                await median_of(runs, lambda r: query_audit(session, windows[r], limit=100)),
            "one-hour window, event=NODE.CREATE":
                await median_of(runs, lambda r: query_audit(session, by_event[r], limit=500)),
            "one-hour window, actor=service-3":
                await median_of(runs, lambda r: query_audit(session, by_actor[r], limit=500)),
        }  # fmt: skip
    print(f"  events per hour window: median {statistics.median(sizes):.0f}")
    print(f"  baseline SELECT count(*) over the window: {count * 1000:.2f} ms")
    print(f"  baseline SELECT * of the window's rows, unshaped: {rows * 1000:.2f} ms")
    for label, seconds in figures.items():
        print(
            f"  {label}: {seconds * 1000:.2f} ms "
            f"({seconds / count:.1f}x count, {seconds / rows:.1f}x raw rows)"
        )


async def export_figures(sessions: async_sessionmaker[AsyncSession], end: datetime) -> None:
    day = AuditFilter(end - timedelta(days=1), end)
    started = time.perf_counter()
    exported = 0
    async for event in stream_audit(sessions, day):
        exported += len(json.dumps(event)) > 0
    seconds = time.perf_counter() - started
    print(f"  export of one day ({exported:,} events as NDJSON): {seconds:.2f} s, "
          f"{exported / seconds:,.0f} events/s")  # fmt: skip


async def read_all(sessions: async_sessionmaker[AsyncSession], batch: int) -> int:
    """The baseline for verify: the same keyset walk, reading every column, hashing nothing."""
    seen, after = 0, 0
    async with sessions() as session:
        while rows := (await session.execute(
            text("SELECT * FROM audit_event WHERE seq > :a ORDER BY seq LIMIT :n"),
            {"a": after, "n": batch},
        )).all():  # fmt: skip
            seen, after = seen + len(rows), rows[-1].seq
    return seen


async def verify_figures(sessions: async_sessionmaker[AsyncSession], count: int) -> None:
    started = time.perf_counter()
    read = await read_all(sessions, 2000)
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    report = await verify_chain(sessions)
    seconds = time.perf_counter() - started
    assert report.ok, report
    assert report.checked == read == count
    print(f"  baseline keyset read of every row: {baseline:.1f} s, {count / baseline:,.0f} rows/s")
    print(f"  verify: {seconds:.1f} s, {count / seconds:,.0f} events/s "
          f"({seconds / baseline:.1f}x the plain read)")  # fmt: skip


async def _existing_fill(url: str, count: int) -> datetime | None:
    try:
        connection = await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        return None
    try:
        row = await connection.fetchrow("SELECT count(*), max(event_time) FROM audit_event")
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await connection.close()
    if row is None or row[0] != count:
        return None
    end: datetime = row[1]
    return end


async def filled_end(url: str, count: int, reuse: bool) -> datetime:
    """The last event's time: of the existing fill with ``--reuse``, else of a fresh one."""
    if reuse and (existing := await _existing_fill(url, count)) is not None:
        print("  reusing the existing fill")
        return existing
    await ensure_database(url, recreate=True)
    await asyncio.to_thread(upgrade_head, url)
    end = datetime.now(UTC).replace(microsecond=0)
    seconds = await fill(url, count, end)
    rate = count / seconds
    print(
        f"  fill (events and seals hashed in Python + COPY): {seconds:.1f} s, {rate:,.0f} events/s"
    )
    return end


async def run(server_url: str, count: int, runs: int, reuse: bool) -> None:
    url = with_database(server_url, DATABASE)
    print(f"database {urlsplit(url).hostname}:{urlsplit(url).port}/{DATABASE}, {count:,} events")
    end = await filled_end(url, count, reuse)
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        await window_figures(sessions, end, runs)
        await export_figures(sessions, end)
        await verify_figures(sessions, count)
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15, help="runs per query figure (median)")
    parser.add_argument(
        "--reuse", action="store_true", help="keep an existing fill of the same size"
    )
    arguments = parser.parse_args()
    server = resolve_server()
    try:
        asyncio.run(run(server.url, arguments.events, arguments.runs, arguments.reuse))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
