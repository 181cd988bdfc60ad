"""A good caller's latency while 1,000 bad-key requests arrive, next to its quiet latency.

    .venv/bin/python benchmarks/refusal_flood_bench.py [--requests 400] [--flood 1000]

Uses the database ``tsprov_flood`` (recreated) on the server the tests use. tsprov runs as
``tsprov serve`` in a process of its own; the flood comes from another process, with many
connections at once and a fresh random key per request, as an attacker guessing keys would.
The good caller lists a user's provisioning requests (an authenticated read with two
queries), one request at a time, first alone and then while the flood runs.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from asyncio.subprocess import PIPE
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.callers.store import create_caller
from service.crypto.keyring import generate_key_entry
from service.db import create_session_factory
from service.ops.devdb import PostgresServer, ensure_database, find_server, with_database
from service.ops.migrate import upgrade_head
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "tsprov_flood"
PORT = 8791
FLOOD_CONNECTIONS = 50
LIST_PATH = "/v1/users/bench-user/provisioning-requests"


def resolve_server() -> PostgresServer:
    """The server the tests use: TSPROV_DATABASE_URL's, else the one ``devdb`` finds."""
    configured = os.environ.get("TSPROV_DATABASE_URL")
    if not configured:
        return find_server(ROOT)
    parts = urlsplit(configured.replace("postgresql+asyncpg://", "postgresql://", 1))
    return PostgresServer(urlunsplit((parts.scheme, parts.netloc, "", parts.query, "")))


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def good_caller(
    base: str, key: str, count: int, while_running: asyncio.subprocess.Process | None = None
) -> list[float]:
    """Latencies (ms) of sequential authenticated reads: ``count`` of them, or, given a
    process, as many as fit while it runs."""
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}) as api:
        while len(latencies) < count if while_running is None else while_running.returncode is None:
            started = time.perf_counter()
            answer = await api.get(LIST_PATH)
            latencies.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, answer.text
    return latencies


async def flood(port: int, total: int) -> None:
    """``total`` bad-key requests over FLOOD_CONNECTIONS keep-alive connections.

    Raw HTTP/1.1 with prepared bytes: an attacker's client runs on its own machines, so this
    one should spend as little of the shared CPU as it can.
    """
    statuses: collections.Counter[str] = collections.Counter()
    remaining = iter(range(total))
    print("flooding", flush=True)  # the parent measures from here, not from interpreter start
    started = time.perf_counter()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in remaining:
                bad = "tsprov_" + secrets.token_urlsafe(32)
                writer.write(
                    f"GET {LIST_PATH} HTTP/1.1\r\nHost: bench\r\n"
                    f"Authorization: Bearer {bad}\r\n\r\n".encode()
                )
                head = await reader.readuntil(b"\r\n\r\n")
                statuses[head.split(b" ", 2)[1].decode()] += 1
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(FLOOD_CONNECTIONS)))
    elapsed = time.perf_counter() - started
    print(
        f"  flood: {total} requests in {elapsed:.2f} s, statuses {dict(sorted(statuses.items()))}"
    )


def start_service(database_url: str) -> subprocess.Popen[bytes]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TSPROV_")}
    environment.update(
        TSPROV_ENV="development",
        TSPROV_DATABASE_URL=database_url,
        TSPROV_ENCRYPTION_KEYS=generate_key_entry("bench"),
        TSPROV_OAUTH_CLIENT_ID="bench",
        TSPROV_OAUTH_CLIENT_SECRET=secrets.token_urlsafe(16),
        TSPROV_TAILSCALE_API_URL="http://127.0.0.1:9",
        TSPROV_TAILSCALE_LOGIN_URL="http://127.0.0.1:9",
    )
    command = [sys.executable, "-m", "service", "serve", "--port", str(PORT)]
    return subprocess.Popen(command, env=environment, cwd=ROOT, stderr=subprocess.DEVNULL)


async def wait_until_ready(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(300):
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("tsprov did not become ready")


async def make_key(database_url: str) -> str:
    settings = Settings(env="development", database_url=database_url)
    engine = create_async_engine(settings.database_url)
    async with create_session_factory(engine)() as session, session.begin():
        _, key = await create_caller(session, "bench-reader", ["read"], [])
    await engine.dispose()
    return key


async def refusal_rows(database_url: str) -> int:
    engine = create_async_engine(
        Settings(env="development", database_url=database_url).database_url
    )
    async with engine.connect() as connection:
        rows = await connection.scalar(
            text("SELECT count(*) FROM audit_event WHERE event_name LIKE 'FAILED_REQUEST.%'")
        )
    await engine.dispose()
    return int(rows or 0)


async def measure(database_url: str, requests: int, flood_size: int) -> None:
    base = f"http://127.0.0.1:{PORT}"
    key = await make_key(database_url)
    await good_caller(base, key, 50)  # warm up connections and caches
    quiet = await good_caller(base, key, requests)
    flooder = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--flood-only", str(flood_size), cwd=ROOT, stdout=PIPE
    )
    assert flooder.stdout is not None
    await flooder.stdout.readline()
    # Only the calls made while the flood runs count as "under flood".
    loud = await good_caller(base, key, 0, while_running=flooder)
    print((await flooder.stdout.read()).decode(), end="")
    await flooder.wait()
    for name, samples in (("quiet", quiet), ("under flood", loud)):
        p50, p99 = statistics.median(samples), percentile(samples, 0.99)
        print(
            f"  good caller {name}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
            f"max {max(samples):.2f} ms ({len(samples)} calls)"
        )
    ratio = percentile(loud, 0.99) / percentile(quiet, 0.99)
    print(f"  p99 under flood / quiet p99: {ratio:.2f}x (target: at most 2x)")
    print(f"  FAILED_REQUEST rows in the audit trail: {await refusal_rows(database_url)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="good calls while quiet")
    parser.add_argument("--flood", type=int, default=1000, help="bad-key requests")
    parser.add_argument("--flood-only", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.flood_only is not None:
        asyncio.run(flood(PORT, arguments.flood_only))
        return
    server = resolve_server()
    try:
        url = with_database(server.url, DATABASE)
        asyncio.run(ensure_database(url, recreate=True))
        upgrade_head(url)
        service = start_service(url)
        try:
            asyncio.run(wait_until_ready(f"http://127.0.0.1:{PORT}"))
            asyncio.run(measure(url, arguments.requests, arguments.flood))
        finally:
            service.terminate()
            service.wait(timeout=30)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
