"""Create + claim pairs through tsprov and through a bare floor app, side by side.

    .venv/bin/python -m benchmarks.provision_bench [--workers 1] [--seconds 10] [--profile DIR]
    .venv/bin/python -m benchmarks.provision_bench --census-only   # SQL per pair alone
    .venv/bin/python -m benchmarks.provision_bench --storm-only    # the refresh storm alone

Starts the sandbox (reusable grants, auto-approving), ``tsprov serve`` and the floor app
(``benchmarks/floor_app.py``) with the same worker count on the same Postgres server, each
on its own database (``tsprov_provision_bench``, ``floor_provision_bench``: created, then
dropped at the end). Gives 52 users (32 for the load, 20 for the storm) a reusable grant
through the real consent flow, makes a caller key with ``tsprov callers create``, and prints
a table: pairs/s and latency at each level of concurrent callers (every level run
``--rounds`` times, the two apps taking turns), SQL per pair, a refresh storm over two
replicas, and RSS per worker; then who used the CPU during each level. With ``--profile``,
tsprov at 1 and 8 callers and the floor at 8 run once more under py-spy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
from pathlib import Path

import asyncpg

from benchmarks.database import (
    analyze,
    asyncpg_url,
    drop_database,
    fresh_database,
    resolve_server,
    serving_login,
)
from benchmarks.figures import (
    SECTIONS,
    BenchRun,
    Plan,
    Row,
    Section,
    statement_rows,
    storm_rows,
    worker_rss,
)
from benchmarks.floor_app import create_schema
from benchmarks.preparation import (
    consent_users,
    create_caller_key,
    run_tsprov,
    sandbox_access_token,
)
from benchmarks.printout import (
    print_cpu_shares,
    print_details,
    print_profile,
    print_statement_shapes,
    print_table,
)
from benchmarks.stack import Stack

# The suffix the tests use keeps runs from several checkouts on one server apart.
_SUFFIX = os.environ.get("TSPROV_TEST_DB_SUFFIX", "")
TSPROV_DATABASE = f"tsprov_provision_bench{_SUFFIX}"
FLOOR_DATABASE = f"floor_provision_bench{_SUFFIX}"
STORM_USERS = 20
# tsprov serves as this login in its app role; migrations and the CLI run as the owner.
SERVING_LOGIN = "tsprov_bench_svc"


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1, help="worker processes for each app")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32], help="callers")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per level")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per level")
    parser.add_argument("--rounds", type=int, default=3, help="times to run every level")
    parser.add_argument("--census-pairs", type=int, default=50, help="pairs counted for SQL")
    parser.add_argument("--storm-per-user", type=int, default=10, help="claims per storm user")
    parser.add_argument(
        "--profile", type=Path, help="also profile tsprov at 1 and 8 callers and the floor at 8"
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument(
        "--census-only", action="store_true", help="only the SQL per pair: no load, no storm"
    )
    parser.add_argument(
        "--storm-only", action="store_true", help="only the refresh storm: no load, no census"
    )
    return parser.parse_args()


async def describe_machine(server_url: str) -> str:
    connection = await asyncpg.connect(f"{server_url}/postgres", timeout=10)
    try:
        version = str(await connection.fetchval("SHOW server_version")).split()[0]
    finally:
        await connection.close()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}, "
        f"Postgres {version}; load generator, sandbox, apps and Postgres on this one machine"
    )


async def prepare(stack: Stack, plan: Plan) -> BenchRun:
    """Servers up, a caller key, reusable grants for every user, the floor's access token."""
    stack.start_sandbox()
    tsprov = stack.start_tsprov(0)
    key = create_caller_key(stack)
    load_users = [f"load-{index:02d}" for index in range(max(plan.levels))]
    storm_count = STORM_USERS if plan.storm_per_user else 0
    storm_users = [f"storm-{index:02d}" for index in range(storm_count)]
    admin_key = create_caller_key(stack, ("admin",))
    await consent_users(tsprov.url, key, admin_key, load_users + storm_users)
    token = await sandbox_access_token(stack)
    stack.start_floor(token)
    for database in (stack.tsprov_database, stack.floor_database):
        await analyze(database)
    return BenchRun(stack, plan, key, load_users, storm_users, token)


def workers_note(stack: Stack) -> str:
    # uvicorn's workers, not its supervisor nor multiprocessing's resource tracker.
    serving = len(worker_rss(stack.servers["tsprov-a"].process.pid))
    if serving == stack.workers:
        return f"{stack.workers} worker(s) each"
    return (
        f"asked for {stack.workers} workers: the floor runs {stack.workers}, "
        f"`tsprov serve --workers {stack.workers}` runs {serving}"
    )


def chosen_sections(arguments: argparse.Namespace) -> tuple[Section, ...]:
    if arguments.census_only:
        return (statement_rows,)
    if arguments.storm_only:
        return (storm_rows,)
    return SECTIONS


async def measure(
    stack: Stack, plan: Plan, profile: Path | None, sections: tuple[Section, ...]
) -> None:
    run = await prepare(stack, plan)
    print(f"workers: {workers_note(stack)}", flush=True)
    rows: list[Row] = []
    for section in sections:
        print(f"  … {section.__name__.removesuffix('_rows')}", flush=True)
        rows += await section(run)
    print_table(rows)
    print_details(run)
    print_cpu_shares(run)
    print_statement_shapes(run)
    if profile is not None:
        await print_profile(run, profile)


async def run_benchmark(server_url: str, arguments: argparse.Namespace) -> None:
    print(await describe_machine(server_url), flush=True)
    tsprov_url = await fresh_database(server_url, TSPROV_DATABASE)
    floor_url = await fresh_database(server_url, FLOOR_DATABASE)
    log_dir = Path(tempfile.mkdtemp(prefix="tsprov-bench-"))
    print(f"server logs: {log_dir}", flush=True)
    stack = Stack(tsprov_url, floor_url, arguments.workers, log_dir)
    plan = Plan(tuple(arguments.levels), arguments.warmup, arguments.seconds,
                arguments.census_pairs, arguments.storm_per_user, arguments.rounds)  # fmt: skip
    try:
        run_tsprov(stack, "migrate")
        stack.tsprov_serving_database = await serving_login(tsprov_url, SERVING_LOGIN)
        await create_schema(asyncpg_url(floor_url))
        await measure(stack, plan, arguments.profile, chosen_sections(arguments))
    finally:
        stack.stop_all()
        if not arguments.keep:
            for name in (TSPROV_DATABASE, FLOOR_DATABASE):
                await drop_database(server_url, name)


def main() -> None:
    arguments = parse_arguments()
    if arguments.census_only:
        # The census cycles over the load users: a few are enough, and the storm is skipped.
        arguments.levels, arguments.profile, arguments.storm_per_user = [4], None, 0
    if arguments.storm_only:
        arguments.levels, arguments.profile = [1], None
    if arguments.profile is not None:
        arguments.profile.mkdir(parents=True, exist_ok=True)
    server = resolve_server()
    try:
        asyncio.run(run_benchmark(server.url, arguments))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
