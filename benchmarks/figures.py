"""The rows of the benchmark's table, one function per group of figures.

Each section is ``async (run) -> list[Row]`` and runs in the order of ``SECTIONS``; a new
figure is a new function added there. Sections may leave detail for the printout in
``run.details`` (the refresh storm's failures, say).
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from benchmarks.census_run import count_pairs, in_process_floor
from benchmarks.cpu_share import busiest_shares, cores_used, snapshot
from benchmarks.database import asyncpg_url
from benchmarks.floor_app import FloorConfig
from benchmarks.load import LevelResult, run_level
from benchmarks.servers import command_line, process_tree, rss_mib
from benchmarks.sql_census import SqlCensus
from benchmarks.stack import Stack
from benchmarks.storm import refresh_storm
from benchmarks.tsprov_hooks import in_process_service


@dataclass(frozen=True)
class Row:
    figure: str
    floor: str
    tsprov: str
    ratio: str = ""


@dataclass(frozen=True)
class Plan:
    levels: tuple[int, ...]
    warmup: float
    seconds: float
    census_pairs: int
    storm_per_user: int
    rounds: int = 1


@dataclass
class BenchRun:
    stack: Stack
    plan: Plan
    caller_key: str
    load_users: list[str]
    storm_users: list[str]
    floor_access_token: str
    levels: dict[tuple[str, int], list[LevelResult]] = field(default_factory=dict)
    census: dict[str, SqlCensus] = field(default_factory=dict)
    # (round, app, callers) → cores used by each group of processes
    cpu: dict[tuple[int, str, int], dict[str, float]] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)

    def url(self, app: str) -> str:
        return self.stack.servers["floor" if app == "floor" else "tsprov-a"].url

    def process_groups(self) -> dict[int, str]:
        """Every process of the benchmark, by what it is (for the CPU shares)."""
        groups = {os.getpid(): "load generator"}
        for name, server in self.stack.servers.items():
            for pid in process_tree(server.process.pid):
                groups[pid] = name.removesuffix("-a").removesuffix("-b")
        return groups


def ratio(tsprov: float, floor: float) -> str:
    return f"{tsprov / floor:.2f}x" if floor and not math.isnan(tsprov / floor) else ""


async def throughput_rows(run: BenchRun) -> list[Row]:
    """Pairs/s, p50 and p99 at each level; the floor and tsprov take turns at each level.

    With several rounds, pairs/s is the median round (and the range); latencies are those of
    every round together.
    """
    plan = run.plan
    for round_index in range(plan.rounds):
        for callers in plan.levels:
            for app in ("floor", "tsprov"):
                await _measure_level(run, round_index, app, callers)
    rows = []
    for callers in plan.levels:
        floor, tsprov = run.levels[("floor", callers)], run.levels[("tsprov", callers)]
        rows += _level_rows(callers, floor, tsprov)
        for app, results in (("floor", floor), ("tsprov", tsprov)):
            if failures := LevelResult.pooled(results).failures:
                run.details.append(f"{app} failures at {callers} callers: " + ", ".join(
                    f"{count} x {kind}" for kind, count in failures.most_common()))  # fmt: skip
    return [*rows, _other_work_row(run)]


def _other_work_row(run: BenchRun) -> Row:
    """Cores taken by work outside the benchmark while each app was measured (mean)."""

    def mean_other(app: str) -> str:
        taken = [used.get("other", 0.0) + used["unattributed"]
                 for (_, measured, _), used in run.cpu.items() if measured == app]  # fmt: skip
        return f"{statistics.mean(taken):.2f} of {os.cpu_count()}"

    return Row("cores busy with work outside the benchmark, mean over levels",
               mean_other("floor"), mean_other("tsprov"))  # fmt: skip


async def _measure_level(run: BenchRun, round_index: int, app: str, callers: int) -> None:
    plan, groups = run.plan, run.process_groups()
    before = snapshot(groups)
    result = await run_level(
        run.url(app), run.caller_key, run.load_users, callers, plan.warmup, plan.seconds
    )
    after = snapshot(groups)
    run.cpu[(round_index, app, callers)] = cores_used(before, after)
    run.levels.setdefault((app, callers), []).append(result)
    if run.stack.workers > 1:
        shares = " / ".join(f"{share:.0%}" for share in busiest_shares(before, after, app))
        run.details.append(
            f"round {round_index + 1}, {app} at {callers} callers: its CPU by process {shares}"
        )


def _rate(results: list[LevelResult]) -> tuple[float, str]:
    rates = sorted(result.pairs_per_second for result in results)
    median = statistics.median(rates)
    spread = f" ({rates[0]:.1f}-{rates[-1]:.1f})" if len(rates) > 1 else ""
    return median, f"{median:.1f}{spread}"


def _level_rows(callers: int, floor: list[LevelResult], tsprov: list[LevelResult]) -> list[Row]:
    (floor_rate, floor_text), (tsprov_rate, tsprov_text) = _rate(floor), _rate(tsprov)
    low, high = LevelResult.pooled(floor), LevelResult.pooled(tsprov)
    return [
        Row(f"pairs/s, {callers} callers", floor_text, tsprov_text, ratio(tsprov_rate, floor_rate)),
        *(_latency_row(callers, share, low, high) for share in (50, 99)),
        Row(f"errors (of them 503) at {callers} callers", f"{low.errors} ({low.unavailable})",
            f"{high.errors} ({high.unavailable})"),
    ]  # fmt: skip


def _latency_row(callers: int, share: int, floor: LevelResult, tsprov: LevelResult) -> Row:
    low, high = floor.percentile(share), tsprov.percentile(share)
    label = f"p{share} pair latency, {callers} callers"
    return Row(label, f"{low * 1000:.0f} ms", f"{high * 1000:.0f} ms", ratio(high, low))


async def statement_rows(run: BenchRun) -> list[Row]:
    """SQL per pair, counted by engine hooks on in-process apps built by their factories."""
    pairs, users, key = run.plan.census_pairs, run.load_users, run.caller_key
    async with in_process_service(run.stack.tsprov_environment(run.stack.tsprov_ports[0])) as (
        client,
        engine,
    ):
        run.census["tsprov"] = await count_pairs(client, engine, key, users, pairs)
    floor_config = FloorConfig(
        asyncpg_url(run.stack.floor_database), run.stack.sandbox_url, run.floor_access_token
    )
    async with in_process_floor(floor_config) as (client, engine):
        run.census["floor"] = await count_pairs(client, engine, key, users, pairs)
    return census_rows(run.census["floor"], run.census["tsprov"], pairs)


def census_rows(floor: SqlCensus, tsprov: SqlCensus, pairs: int) -> list[Row]:
    def per_pair(count: int) -> str:
        return f"{count / pairs:g}"

    ft, tt = floor.tally(), tsprov.tally()
    return [
        Row("SQL statements per pair (engine hook)", per_pair(floor.statements_in()),
            per_pair(tsprov.statements_in())),
        Row("transactions per pair (rolled back)",
            f"{per_pair(ft.with_statements)} ({per_pair(ft.rolled_back)})",
            f"{per_pair(tt.with_statements)} ({per_pair(tt.rolled_back)})"),
        Row("pool checkouts per pair", per_pair(sum(floor.checkouts.values())),
            per_pair(sum(tsprov.checkouts.values()))),
        Row("pre-ping transactions per pair (BEGIN; `;`; ROLLBACK)", per_pair(floor.pings()),
            per_pair(tsprov.pings())),
        Row("round trips to Postgres per pair (statements, BEGIN/END, pings)",
            per_pair(floor.round_trips()), per_pair(tsprov.round_trips())),
    ]  # fmt: skip


async def storm_rows(run: BenchRun) -> list[Row]:
    """The refresh storm across replicas a and b (b starts here and stays up for RSS)."""
    stack = run.stack
    stack.start_tsprov(1)
    replicas = [stack.servers["tsprov-a"].url, stack.servers["tsprov-b"].url]
    storm = await refresh_storm(
        replicas, stack.sandbox_url, stack.tsprov_database, run.caller_key, run.storm_users,
        run.plan.storm_per_user,
    )  # fmt: skip
    label = f"refresh storm: {storm.claims} claims, {storm.users} expired grants, 2 replicas"
    rows = [
        Row(f"{label}: refreshes seen by the sandbox", "", f"{storm.refreshes}"),
        Row(f"{label}: 200 / 503 / other", "",
            f"{storm.succeeded} / {storm.unavailable} / {storm.other_errors}"),
        Row(f"{label}: duration", "", f"{storm.seconds:.2f} s"),
    ]  # fmt: skip
    if storm.failures:
        run.details.append("refresh storm failures: " + ", ".join(
            f"{count} x {failure}" for failure, count in storm.failures.most_common()))  # fmt: skip
    return rows


def worker_rss(pid: int) -> list[float]:
    """RSS of each serving process: the one process, or the workers uvicorn spawned below it.

    uvicorn's supervisor and multiprocessing's resource tracker serve nothing: left out.
    """
    spawned = [child for child in process_tree(pid)[1:] if "spawn_main" in command_line(child)]
    return [rss for rss in map(rss_mib, spawned or [pid]) if rss is not None]


async def rss_rows(run: BenchRun) -> list[Row]:
    servers = run.stack.servers
    floor = worker_rss(servers["floor"].process.pid)
    replicas = {name: worker_rss(servers[name].process.pid) for name in ("tsprov-a", "tsprov-b")}
    shown = "; ".join(
        f"{name[-1]}: " + ", ".join(f"{rss:.0f}" for rss in values)
        for name, values in replicas.items()
    )
    return [
        Row("RSS per worker after the run (MiB)", ", ".join(f"{rss:.0f}" for rss in floor), shown)
    ]


Section = Callable[[BenchRun], Awaitable[list[Row]]]
SECTIONS: tuple[Section, ...] = (throughput_rows, statement_rows, storm_rows, rss_rows)
