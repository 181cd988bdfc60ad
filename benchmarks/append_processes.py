"""The audit append benchmark's writers spread over several processes (``--processes N``).

tsprov serves with ``tsprov serve --workers N``: each worker process records the events of
its own requests, and the sealing job runs in one of them. With every writer in one Python
process, the new design may stop where that process's CPU is used up (SQLAlchemy sessions,
the event loop) rather than where the machine's is. Here the writers are dealt out over N
processes, each with its own engine, and the sealer stays in the benchmark's own process.
Both designs run the same way, so the comparison holds; the default stays one process. The
writers' processes run on uvloop, as the workers do.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import uvloop
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine


async def _write(
    url: str,
    design: str,
    writers: list[int],
    seconds: float,
    think: float,
    start: threading.Barrier,
) -> tuple[int, float]:
    # Imported here: the benchmark's module imports this one.
    from benchmarks.audit_append_bench import append_new, writer_loop
    from benchmarks.old_audit_design import append_old

    append = {"new": append_new, "old": append_old}[design]
    engine = create_async_engine(url, pool_size=len(writers) + 1)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        # Every connection opened before the clock starts, as the one-process run has them.
        async def connect() -> None:
            async with sessions() as session:
                await session.execute(text("SELECT 1"))

        await asyncio.gather(*(connect() for _ in writers))
        await asyncio.to_thread(start.wait)
        started = time.perf_counter()
        deadline = started + seconds
        counts = await asyncio.gather(
            *(writer_loop(sessions, append, writer, deadline, think) for writer in writers)
        )
        return sum(counts), time.perf_counter() - started
    finally:
        await engine.dispose()


def _write_in_process(*arguments: Any) -> tuple[int, float]:
    # On uvloop, as tsprov's workers run (uvicorn picks it when it is installed, and
    # uvicorn[standard] installs it); the old design's writers run on it alike.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_write(*arguments))


async def rate_in_processes(
    url: str,
    design: str,
    writers: int,
    processes: int,
    timing: tuple[float, float],
    started: asyncio.Event,
) -> float:
    """Appends per second of ``writers`` writers dealt out over ``processes`` processes;
    ``started`` is set once they all start writing (the sealer starts with them)."""
    seconds, think = timing
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Barrier(processes + 1)
        with ProcessPoolExecutor(processes, mp_context=context) as pool:
            loop = asyncio.get_running_loop()
            shares = [list(range(writers))[index::processes] for index in range(processes)]
            runs = [
                loop.run_in_executor(
                    pool, _write_in_process, url, design, share, seconds, think, start
                )
                for share in shares
            ]
            await asyncio.to_thread(start.wait)
            started.set()
            results = await asyncio.gather(*runs)
    return sum(count for count, _ in results) / max(elapsed for _, elapsed in results)
