"""The crash-safety table with this machine's figures: `python -m benchmarks.chaos`.

It runs the chaos tests (real `tsprov serve` processes killed with -9 and SIGTERM, a private
Postgres cluster stopped and restarted, the sandbox delaying Tailscale's answers), which
write what they measured to a file this command names, and prints each figure beside its
target. The tests assert the behaviour; this prints the numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.helpers.figures import FIGURES_PATH_VARIABLE

ROOT = Path(__file__).resolve().parent.parent
CHAOS_TESTS = (
    "tests/faults/test_crash_recovery.py",
    "tests/faults/test_database_restart.py",
    "tests/faults/test_shutdown.py",
)
# (figure, what it is, the target)
ROWS = (
    ("claimable_after_restart_seconds", "kill -9 mid-mint: claimable after the restart", "≤ 10 s"),
    ("orphan_keys_deleted", "kill -9 mid-mint: orphan keys deleted at Tailscale", "1"),
    (
        "orphan_key_deleted_after_kill_seconds",
        "kill -9 mid-mint: orphan key deleted, after the kill",
        "one background interval after settling",
    ),
    ("ready_after_postgres_back_seconds", "Postgres stopped: ready after it returned", "at once"),
    ("long_poll_wake_after_restart_seconds", "Postgres restarted: long-poll wake", "≤ 2 s"),
    ("claims_finished_during_drain", "SIGTERM, 10 claims of 2.5 s in flight: finished", "all"),
    (
        "claims_finished_during_drain_two_workers",
        "SIGTERM, 2 workers, 6 claims in flight: finished",
        "all",
    ),
)


def run_chaos_tests(figures: Path) -> int:
    environment = {**os.environ, FIGURES_PATH_VARIABLE: str(figures)}
    environment.setdefault("TSPROV_TEST_DB_SUFFIX", "_chaos")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CHAOS_TESTS]
    return subprocess.run(command, cwd=ROOT, env=environment, check=False).returncode


def read_figures(figures: Path) -> dict[str, float | str]:
    found: dict[str, float | str] = {}
    for line in figures.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        found[entry["name"]] = entry["value"]
    return found


def shown(value: float | str | None) -> str:
    if value is None:
        return "not measured"
    return f"{value:.2f} s" if isinstance(value, float) else str(value)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="tsprov-chaos-") as scratch:
        figures = Path(scratch) / "figures.jsonl"
        figures.touch()
        code = run_chaos_tests(figures)
        found = read_figures(figures)
    print(f"\n| {'fault':<52} | {'this machine':<14} | target |")
    print(f"|{'-' * 54}|{'-' * 16}|--------|")
    for name, what, target in ROWS:
        print(f"| {what:<52} | {shown(found.get(name)):<14} | {target} |")
    if code:
        print(f"\nthe chaos tests failed (exit {code}): the figures above may be incomplete")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
