"""Audit appends: 8 concurrent writers, lock-free recording vs the old global-lock chain.

    .venv/bin/python -m benchmarks.audit_append_bench [--writers 8] [--seconds 15]
        [--rounds 2] [--think-ms 2] [--verify-events 100000]
    .venv/bin/python -m benchmarks.audit_append_bench --verify-only   # three verify walks
    .venv/bin/python -m benchmarks.audit_append_bench --processes 2   # writers in 2 processes

Uses the database ``tsprov_append_bench`` (recreated) on the server the tests use, like
``audit_bench.py``. Each writer runs business transactions back to back, shaped like the
service's: a business row written, the audit event, the row updated, then ``--think-ms``
of the request's remaining work inside the transaction (further statements, round trips
to a database on another host) before the commit. The new design records the event with the
service's own ``record_event`` while the sealing job's round runs alongside every 200 ms.
The old design is re-implemented here as it was: a transaction-scoped global advisory
lock, the chain head read, the hash computed, the event inserted, all inside the business
transaction, into a table of the old shape in the same database. Rounds alternate between
the two so that a busy machine weighs on both alike. The writers share one process unless
``--processes`` deals them out over several, as tsprov's workers are (``append_processes``).

Then ``verify``: the service's walk over the sealed chain (the fill of ``audit_bench.py``
in ``tsprov_bench``, reused when it has the size asked for), and the old walk, which
rehashed every event, over the old-design table the writers filled.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from benchmarks.append_processes import rate_in_processes
from benchmarks.audit_bench import DATABASE as VERIFY_DATABASE
from benchmarks.audit_bench import filled_end, resolve_server
from benchmarks.old_audit_design import append_old, old_verify_rate
from service.audit.chain import verify_chain
from service.audit.events import WORKER, Target, record_event
from service.audit.sealer import seal_audit_trail_now
from service.audit.signing import AuditSigner, generate_signing_key
from service.ops.devdb import ensure_database, with_database
from service.ops.migrate import upgrade_head

DATABASE = f"tsprov_append_bench{os.environ.get('TSPROV_TEST_DB_SUFFIX', '')}"
SEAL_EVERY_SECONDS = 0.2
SIGNER = AuditSigner.parse(generate_signing_key())
SETUP = (
    "CREATE TABLE bench_business (id uuid PRIMARY KEY, writer int, at timestamptz)",
    # The old design's table: the same event columns, chained at append time.
    "CREATE TABLE old_audit_event (LIKE audit_event INCLUDING DEFAULTS INCLUDING IDENTITY)",
    "ALTER TABLE old_audit_event DROP COLUMN xid",
    "ALTER TABLE old_audit_event ADD COLUMN prev_hash bytea NOT NULL, "
    "ADD COLUMN hash bytea NOT NULL, ADD PRIMARY KEY (seq)",
)
BUSINESS = text("INSERT INTO bench_business (id, writer, at) VALUES (:id, :w, now())")
BUSINESS_AFTER = text("UPDATE bench_business SET at = now() WHERE id = :id")
Append = Callable[[AsyncSession, int], Awaitable[None]]


async def append_new(session: AsyncSession, writer: int) -> None:
    target = Target(id=str(uuid.uuid4()), name=f"user{writer}", type="PROVISIONING_REQUEST")
    await record_event(
        session, origin="CONFIG_API", actor=WORKER, target=target, action="UPDATE",
        old="ready", new="claimed", user_id=f"user{writer}",
    )  # fmt: skip


@dataclass(frozen=True)
class Workload:
    writers: int
    seconds: float
    think: float
    processes: int = 1  # the writers' processes; the sealer runs in the benchmark's own


async def writer_loop(
    sessions: async_sessionmaker[AsyncSession], append: Append, writer: int, deadline: float,
    think: float,
) -> int:  # fmt: skip
    done = 0
    while time.perf_counter() < deadline:
        row = uuid.uuid4()
        async with sessions() as session, session.begin():
            await session.execute(BUSINESS, {"id": row, "w": writer})
            await append(session, writer)
            await session.execute(BUSINESS_AFTER, {"id": row})
            await asyncio.sleep(think)
        done += 1
    return done


async def sealing_loop(
    sessions: async_sessionmaker[AsyncSession], stop: asyncio.Event, writing: asyncio.Event
) -> int:
    await writing.wait()
    sealed = 0
    while not stop.is_set():
        sealed += (await seal_audit_trail_now(sessions, SIGNER)).sealed
        await asyncio.sleep(SEAL_EVERY_SECONDS)
    return sealed


async def append_rate(
    sessions: async_sessionmaker[AsyncSession], append: Append, work: Workload
) -> float:
    stop, writing = asyncio.Event(), asyncio.Event()
    new = append is append_new
    sealer = asyncio.create_task(sealing_loop(sessions, stop, writing)) if new else None
    if work.processes > 1:
        url = sessions.kw["bind"].url.render_as_string(hide_password=False)
        timing = (work.seconds, work.think)
        design = "new" if new else "old"
        rate = await rate_in_processes(url, design, work.writers, work.processes, timing, writing)
    else:
        writing.set()
        started = time.perf_counter()
        deadline = started + work.seconds
        counts = await asyncio.gather(
            *(
                writer_loop(sessions, append, writer, deadline, work.think)
                for writer in range(work.writers)
            )
        )
        rate = sum(counts) / (time.perf_counter() - started)
    stop.set()
    if sealer is not None:
        await sealer
    return rate


async def new_verify_rates(server_url: str, count: int, walks: int = 1) -> list[VerifyRate]:
    """The service's verify over a sealed chain of ``count`` events (audit_bench's fill),
    ``walks`` times on one engine: the first walk also connects and prepares."""
    url = with_database(server_url, VERIFY_DATABASE)
    await filled_end(url, count, reuse=True)
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    rates = []
    try:
        for _ in range(walks):
            started, cpu = time.perf_counter(), time.process_time()
            report = await verify_chain(async_sessionmaker(engine))
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            assert report.ok, report
            rates.append(VerifyRate(report.checked, seconds, cpu))
    finally:
        await engine.dispose()
    return rates


@dataclass(frozen=True)
class VerifyRate:
    checked: int
    seconds: float
    cpu_seconds: float  # this process's: the walk's Python side

    def __str__(self) -> str:
        return (
            f"{self.checked / self.seconds:,.0f} events/s over {self.checked:,}, "
            f"{self.cpu_seconds / self.checked * 1e6:.1f} µs of CPU per event here"
        )


async def verify_only(server_url: str, count: int) -> None:
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load} at the start")
    for walk, rate in enumerate(await new_verify_rates(server_url, count, walks=3), 1):
        print(f"  verify, walk {walk}: {rate}")


async def prepared_sessions(server_url: str, writers: int) -> async_sessionmaker[AsyncSession]:
    url = with_database(server_url, DATABASE)
    await ensure_database(url, recreate=True)
    await asyncio.to_thread(upgrade_head, url)
    engine = create_async_engine(
        url.replace("postgresql://", "postgresql+asyncpg://", 1), pool_size=writers + 2
    )
    async with engine.begin() as connection:
        for statement in SETUP:
            await connection.execute(text(statement))
    return async_sessionmaker(engine, expire_on_commit=False)


async def append_figures(
    sessions: async_sessionmaker[AsyncSession], work: Workload, rounds: int
) -> None:
    rates: dict[str, list[float]] = {"old": [], "new": []}
    writers = work.writers
    think = work.think * 1000
    print(f"  {writers} writers in {work.processes} process(es), {work.seconds:.0f} s per "
          f"design per round, {think:.1f} ms of other work in each transaction after the "
          "append")  # fmt: skip
    for round_number in range(rounds):
        for name, append in (("old", append_old), ("new", append_new)):
            rate = await append_rate(sessions, append, work)
            rates[name].append(rate)
            print(f"  round {round_number + 1}, {name} design: {rate:,.0f} appends/s")
    old, new = statistics.median(rates["old"]), statistics.median(rates["new"])
    print(f"  append, {writers} writers, old design (global lock): {old:,.0f} events/s")
    print(f"  append, {writers} writers, new design (no lock):     {new:,.0f} events/s")
    print(f"  new / old: {new / old:.1f}x (target >= 5)")
    while (await seal_audit_trail_now(sessions, SIGNER)).sealed:
        pass
    report = await verify_chain(sessions, signer=SIGNER)
    assert report.ok, report
    assert report.pending == 0, report
    print(f"  every appended event sealed and verified: {report.checked:,} in the chain")


async def run(server_url: str, arguments: argparse.Namespace) -> None:
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load} at the start")
    sessions = await prepared_sessions(server_url, arguments.writers)
    try:
        work = Workload(
            arguments.writers, arguments.seconds, arguments.think_ms / 1000, arguments.processes
        )
        await append_figures(sessions, work, arguments.rounds)
        checked, old_rate = await old_verify_rate(sessions)
        print(f"  verify, old walk (rehash each event): {old_rate:,.0f} events/s ({checked:,})")
    finally:
        await sessions.kw["bind"].dispose()
    (rate,) = await new_verify_rates(server_url, arguments.verify_events)
    print(f"  verify, new walk: {rate} (target >= 100,000 events/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0, help="per design, per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--think-ms", type=float, default=2.0)
    parser.add_argument("--verify-events", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=1, help="the writers' processes")
    parser.add_argument(
        "--verify-only", action="store_true", help="only verify, three walks on one engine"
    )
    arguments = parser.parse_args()
    server = resolve_server()
    try:
        if arguments.verify_only:
            asyncio.run(verify_only(server.url, arguments.verify_events))
        else:
            asyncio.run(run(server.url, arguments))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
