"""Figures a chaos test measured, written where `benchmarks/chaos.py` asked for them.

Nothing is asserted on them: the tests assert behaviour, and the figure command prints the
numbers this machine produced against the targets.
"""

from __future__ import annotations

import json
import os

FIGURES_PATH_VARIABLE = "TSPROV_CHAOS_FIGURES"


def report_figure(name: str, value: float | str) -> None:
    """Append one measured figure when the figure command runs the tests; else nothing."""
    path = os.environ.get(FIGURES_PATH_VARIABLE)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"name": name, "value": value}) + "\n")
