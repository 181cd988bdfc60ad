"""A good caller's latency while 1,000 bad-key requests arrive, next to its quiet latency.

    .venv/bin/python -m benchmarks.refusal_flood_bench          # 1,000 bad keys in 1 s, 5 rounds
    .venv/bin/python -m benchmarks.refusal_flood_bench --rate 0  # as fast as they are answered
    .venv/bin/python -m benchmarks.refusal_flood_bench --profile /tmp/flood  # py-spy, last flood

Uses the database ``tsprov_flood`` (recreated) on the server the tests use. tsprov runs as
``tsprov serve`` in a process of its own; each flood comes from another process, over many
connections at once, with a fresh random key per request, as an attacker guessing keys
would, and from a loopback address of its own (127.0.0.11, .12, …), so every round meets
a throttle that has not seen that attacker yet. The good caller (this process) lists a
user's provisioning requests, one call at a time: quiet, then while the flood runs, round
after round, so both sets of figures come from the same minutes of a shared machine.
Last, a flood with no good caller measures the server's CPU per refused request. tsprov
logs as in production (JSON); ``--log-format text`` measures development's access lines.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from asyncio.subprocess import PIPE
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from benchmarks.cpu_share import cores_used, snapshot
from benchmarks.database import asyncpg_url, resolve_server
from benchmarks.hot_spots import read_profile, start_recording
from benchmarks.load import set_setup_aside
from benchmarks.servers import (
    Server,
    clean_environment,
    free_port,
    start_server,
    tsprov_command,
    wait_ready,
)
from benchmarks.tsprov_hooks import ensure_database, with_database
from service.callers.store import create_caller
from service.crypto.keyring import generate_key_entry
from service.db import create_session_factory
from service.ops.migrate import upgrade_head

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "tsprov_flood"
FLOOD_CONNECTIONS = 50
LIST_PATH = "/v1/users/bench-user/provisioning-requests"
COST_FLOOD = 5000  # refusals in the closing measurement of CPU per refusal
TOP = 12


@dataclass
class Samples:
    quiet: list[float] = field(default_factory=list)
    loud: list[float] = field(default_factory=list)


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summary(samples: list[float]) -> str:
    return (
        f"p50 {statistics.median(samples):6.2f} ms, p99 {percentile(samples, 0.99):6.2f} ms, "
        f"max {max(samples):7.2f} ms ({len(samples)} calls)"
    )


def load_average() -> str:
    return "load average " + " ".join(f"{figure:.2f}" for figure in os.getloadavg())


async def good_caller(
    api: httpx.AsyncClient,
    count: int,
    until: asyncio.Future[str] | None = None,
    starts: list[float] | None = None,
) -> list[float]:
    """Latencies (ms) of sequential authenticated reads: ``count`` of them, or, given a
    future, as many as start before it is done; ``starts`` gets when each began (ms)."""
    latencies: list[float] = []
    begun = time.perf_counter()
    while len(latencies) < count if until is None else not until.done():
        started = time.perf_counter()
        answer = await api.get(LIST_PATH)
        latencies.append((time.perf_counter() - started) * 1000)
        if starts is not None:
            starts.append((started - begun) * 1000)
        assert answer.status_code == 200, answer.text
    return latencies


async def flood(port: int, source: str, total: int, rate: float) -> None:
    """``total`` bad-key requests from ``source`` over FLOOD_CONNECTIONS keep-alive
    connections, sent ``rate`` a second (each connection's share on its own schedule), or as
    fast as the answers come back when ``rate`` is 0.

    Raw HTTP/1.1 with bytes prepared before the clock starts: an attacker's client runs on its
    own machines, so this one should spend as little of the shared CPU as it can.
    """
    requests = [
        f"GET {LIST_PATH} HTTP/1.1\r\nHost: bench\r\n"
        f"Authorization: Bearer tsprov_{secrets.token_urlsafe(32)}\r\n\r\n".encode()
        for _ in range(total)
    ]
    statuses: collections.Counter[bytes] = collections.Counter()
    connections = [
        await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        for _ in range(FLOOD_CONNECTIONS)
    ]
    print("flooding", flush=True)  # the parent measures from here, not from interpreter start
    started, cpu_started = time.perf_counter(), time.process_time()

    async def worker(index: int) -> None:
        reader, writer = connections[index]
        for number in range(index, total, FLOOD_CONNECTIONS):
            if rate > 0:
                await asyncio.sleep(max(0.0, started + number / rate - time.perf_counter()))
            writer.write(requests[number])
            head = await reader.readuntil(b"\r\n\r\n")
            statuses[head.split(b" ", 2)[1]] += 1
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
        writer.close()

    await asyncio.gather(*(worker(index) for index in range(FLOOD_CONNECTIONS)))
    elapsed = time.perf_counter() - started
    cores = (time.process_time() - cpu_started) / elapsed
    answers = ", ".join(
        f"{count} x {status.decode()}" for status, count in sorted(statuses.items())
    )
    print(f"{total} in {elapsed:.2f} s ({total / elapsed:.0f}/s, {answers}; flood client used "
          f"{cores:.2f} cores)", flush=True)  # fmt: skip


@dataclass
class Flood:
    process: asyncio.subprocess.Process
    report: asyncio.Task[str]  # done as soon as the last answer is in

    async def finish(self) -> str:
        report = await self.report
        if await self.process.wait() != 0 or not report:
            raise RuntimeError("the flood's process failed (its traceback is above)")
        return report


async def start_flood(port: int, source: str, total: int, rate: float) -> Flood:
    """A flood's process, once it has connected and is about to send."""
    flooder = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.refusal_flood_bench", "--flood-only",
        str(port), source, str(total), str(rate), cwd=ROOT, stdout=PIPE,
    )  # fmt: skip
    assert flooder.stdout is not None
    await flooder.stdout.readline()

    async def report() -> str:
        assert flooder.stdout is not None
        return (await flooder.stdout.readline()).decode().strip()

    return Flood(flooder, asyncio.create_task(report()))


def start_service(database_url: str, port: int, log_dir: Path, log_format: str) -> Server:
    environment = clean_environment(
        TSPROV_ENV="development",
        # Production's log format: a refusal turned away by the throttle writes no access
        # line there (the folded audit event counts it), while text mode writes one each.
        TSPROV_LOG_FORMAT=log_format,
        TSPROV_DATABASE_URL=database_url,
        TSPROV_ENCRYPTION_KEYS=generate_key_entry("bench"),
        TSPROV_OAUTH_CLIENT_ID="bench",
        TSPROV_OAUTH_CLIENT_SECRET=secrets.token_urlsafe(16),
        TSPROV_TAILSCALE_API_URL="http://127.0.0.1:9",
        TSPROV_TAILSCALE_LOGIN_URL="http://127.0.0.1:9",
    )
    command = [tsprov_command(), "serve", "--port", str(port)]
    server = start_server("tsprov", command, environment, port, log_dir)
    wait_ready(server, "/readyz")
    return server


async def make_key(database_url: str) -> str:
    engine = create_async_engine(database_url)
    async with create_session_factory(engine)() as session, session.begin():
        _, key = await create_caller(session, "bench-reader", ["read"], [])
    await engine.dispose()
    return key


async def refusal_rows(database_url: str) -> int:
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        rows = await connection.scalar(
            text("SELECT count(*) FROM audit_event WHERE event_name LIKE 'FAILED_REQUEST.%'")
        )
    await engine.dispose()
    return int(rows or 0)


async def measure_rounds(
    api: httpx.AsyncClient, port: int, arguments: argparse.Namespace, server_pid: int
) -> Samples:
    samples = Samples()
    for number in range(1, arguments.rounds + 1):
        quiet = await good_caller(api, arguments.quiet)
        groups = {server_pid: "tsprov", os.getpid(): "good caller"}
        before = snapshot(groups)
        flooding = await start_flood(
            port, f"127.0.0.{10 + number}", arguments.flood, arguments.rate
        )
        # Only the calls that start while the flood runs count as "under flood".
        starts: list[float] = []
        loud = await good_caller(api, 0, until=flooding.report, starts=starts)
        cores = cores_used(before, snapshot(groups))
        print(f"round {number}: flood {await flooding.finish()}; {load_average()}")
        print(f"  quiet        {summary(quiet)}")
        print(f"  under flood  {summary(loud)}")
        slowest = max(range(len(loud)), key=loud.__getitem__)
        print(f"  slowest call under flood began {starts[slowest]:.0f} ms into it")
        print("  cores used during the flood: " + ", ".join(
            f"{group} {cores.get(group, 0.0):.2f}"
            for group in ("tsprov", "good caller", "postgres", "other", "machine")
        ))  # fmt: skip
        samples.quiet += quiet
        samples.loud += loud
    return samples


async def cost_per_refusal(port: int, server_pid: int, profile_dir: Path | None) -> None:
    """CPU the server spends per refused request, with nothing else asking it for work."""
    raw = profile_dir / "flood.txt" if profile_dir is not None else None
    recorder = None if raw is None else start_recording(server_pid, 4, raw, rate=1000)
    if recorder is not None:
        await asyncio.sleep(1)  # py-spy attaches
    before = snapshot({server_pid: "tsprov"})
    report = await (await start_flood(port, "127.0.0.9", COST_FLOOD, 0)).finish()
    used = cores_used(before, snapshot({server_pid: "tsprov"}))
    seconds = snapshot({}).moment - before.moment
    per_refusal = used.get("tsprov", 0.0) * seconds / COST_FLOOD * 1e6
    print(f"\nalone: flood {report}")
    print(f"  tsprov CPU per refused request: {per_refusal:.0f} µs ({load_average()})")
    if recorder is not None and raw is not None:
        await asyncio.to_thread(recorder.communicate)
        profile = read_profile(raw)
        print(f"  py-spy, {profile.samples} samples; top {TOP} by self samples:")
        for name, share in profile.top_self(TOP):
            print(f"    {share:6.1%}  {name}")
        print("  tsprov functions by inclusive samples:")
        for name, share in profile.top_inclusive(TOP, "service."):
            print(f"    {share:6.1%}  {name}")


async def measure(url: str, arguments: argparse.Namespace) -> None:
    port = free_port()
    key = await make_key(url)
    log_dir = Path(tempfile.mkdtemp(prefix="tsprov-flood-"))
    server = start_service(url, port, log_dir, arguments.log_format)
    try:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as api:
            await good_caller(api, 50)  # warm up connections and caches
            set_setup_aside()
            print(f"{arguments.rounds} rounds of {arguments.quiet} quiet calls, then "
                  f"{arguments.flood} bad keys at "
                  f"{f'{arguments.rate:g}/s' if arguments.rate else 'full speed'}; "
                  f"{load_average()}")  # fmt: skip
            samples = await measure_rounds(api, port, arguments, server.process.pid)
        print(f"\nall rounds: quiet        {summary(samples.quiet)}")
        print(f"            under flood  {summary(samples.loud)}")
        ratio = percentile(samples.loud, 0.99) / percentile(samples.quiet, 0.99)
        print(f"  p99 under flood / quiet p99: {ratio:.2f}x (target: at most 2x)")
        print(f"  FAILED_REQUEST rows in the audit trail: {await refusal_rows(url)}")
        await cost_per_refusal(port, server.process.pid, arguments.profile)
    finally:
        server.stop()


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--flood-only":
        port, source, total, rate = sys.argv[2:]
        asyncio.run(flood(int(port), source, int(total), float(rate)))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="quiet phase, then a flood")
    parser.add_argument("--quiet", type=int, default=200, help="good calls per quiet phase")
    parser.add_argument("--flood", type=int, default=1000, help="bad-key requests per round")
    parser.add_argument("--rate", type=float, default=1000, help="bad keys a second; 0: no pause")
    parser.add_argument("--log-format", choices=("json", "text"), default="json")
    parser.add_argument("--profile", help="a folder for py-spy's stacks of the closing flood")
    arguments = parser.parse_args()
    if arguments.profile:
        arguments.profile = Path(arguments.profile)
        arguments.profile.mkdir(parents=True, exist_ok=True)
    server = resolve_server()
    try:
        url = with_database(server.url, DATABASE)
        asyncio.run(ensure_database(url, recreate=True))
        upgrade_head(url)
        asyncio.run(measure(asyncpg_url(url), arguments))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
