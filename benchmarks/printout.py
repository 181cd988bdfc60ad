"""What the benchmark prints: the table (Markdown, to paste as is), SQL shapes, hot spots."""

from __future__ import annotations

import asyncio
from pathlib import Path

from benchmarks.figures import BenchRun, Row
from benchmarks.hot_spots import read_profile, start_recording
from benchmarks.load import run_level

# Latency at one caller, throughput at eight: each gets a profile of its own. The floor is
# sampled at eight too, so that tsprov's extra CPU can be read against the floor's by package.
PROFILES = (("tsprov", 1), ("tsprov", 8), ("floor", 8))
TOP = 10


def print_table(rows: list[Row]) -> None:
    print("\n| figure | floor | tsprov | tsprov ÷ floor |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row.figure} | {row.floor} | {row.tsprov} | {row.ratio} |")


def print_details(run: BenchRun) -> None:
    if run.details:
        print()
    for line in run.details:
        print(line)


def print_cpu_shares(run: BenchRun) -> None:
    print("\ncores used during each level (warm-up included), from /proc:")
    for (round_index, app, callers), used in run.cpu.items():
        shares = ", ".join(
            f"{group} {cores:.2f}" for group, cores in sorted(used.items()) if group != "machine"
        )
        print(f"  round {round_index + 1}, {app:<6} {callers:>2} callers: "
              f"machine {used['machine']:.2f}: {shares}")  # fmt: skip


def print_statement_shapes(run: BenchRun) -> None:
    pairs = run.plan.census_pairs
    for app in ("tsprov", "floor"):
        census = run.census.get(app)
        if census is None:
            continue
        print(f"\n{app}: statements per pair by shape ({pairs} pairs, one at a time)")
        for phase, shape, count in census.shapes():
            print(f"  {count / pairs:5.2f}  {phase:<6}  {shape}")
        for phase in ("create", "claim"):
            tally = census.tally(phase)
            print(f"  {phase}: {census.statements_in(phase) / pairs:g} statements, "
                  f"{tally.committed / pairs:g} committed + {tally.rolled_back / pairs:g} "
                  f"rolled-back transactions, {tally.empty / pairs:g} with no statement, "
                  f"{census.checkouts[phase] / pairs:g} pool checkouts, "
                  f"{census.pings(phase) / pairs:g} pre-pings, "
                  f"{census.round_trips(phase) / pairs:g} round trips")  # fmt: skip


async def print_profile(run: BenchRun, directory: Path) -> None:
    """More levels sampled by py-spy (``PROFILES``); not part of the table.

    ``directory`` exists already; py-spy's raw stacks are left there.
    """
    for app, callers in PROFILES:
        await _print_profile_at(run, directory, app, callers)


async def _print_profile_at(run: BenchRun, directory: Path, app: str, callers: int) -> None:
    raw = directory / f"{app}-{callers}-callers.txt"
    plan = run.plan
    server = run.stack.servers["floor" if app == "floor" else "tsprov-a"]
    recorder = start_recording(server.process.pid, plan.warmup + plan.seconds, raw)
    result = await run_level(
        run.url(app), run.caller_key, run.load_users, callers, plan.warmup, plan.seconds
    )
    _, errors = await asyncio.to_thread(recorder.communicate)
    if recorder.returncode != 0:
        raise RuntimeError(f"py-spy failed: {errors.decode(errors='replace').strip()}")
    profile = read_profile(raw)
    print(f"\n{app} at {callers} callers under py-spy: {result.pairs_per_second:.1f} "
          f"pairs/s, {profile.samples} samples; stacks: {raw}")  # fmt: skip
    print(f"  top {TOP} by self samples:")
    for name, share in profile.top_self(TOP):
        print(f"    {share:6.1%}  {name}")
    print("  self samples by package:")
    print("    " + ", ".join(f"{name} {share:.1%}" for name, share in profile.by_package()[:TOP]))
    print("  roots of the sampled stacks (SQLAlchemy's greenlets start their own):")
    for name, share in profile.top_roots(TOP):
        print(f"    {share:6.1%}  {name}")
    if app == "tsprov":
        print(f"  top {TOP} tsprov functions by inclusive samples (greenlet work not included):")
        for name, share in profile.top_inclusive(TOP, "service."):
            print(f"    {share:6.1%}  {name}")
