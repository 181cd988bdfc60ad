"""One line per check: its outcome, what was found, and the fix when it is not ok."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    OK = "ok"
    WARN = "warn"  # works, but not as production should
    FAIL = "FAIL"  # tsprov cannot do its job this way
    SKIP = "skip"  # could not be checked here; the line says what would check it


@dataclass(frozen=True)
class Check:
    name: str
    outcome: Outcome
    found: str
    fix: str = ""

    def line(self) -> str:
        fix = f" — fix: {self.fix}" if self.fix and self.outcome != Outcome.OK else ""
        return f"{self.outcome:<4}  {self.name}: {self.found}{fix}"


def ok(name: str, found: str) -> Check:
    return Check(name, Outcome.OK, found)


def warn(name: str, found: str, fix: str) -> Check:
    return Check(name, Outcome.WARN, found, fix)


def fail(name: str, found: str, fix: str) -> Check:
    return Check(name, Outcome.FAIL, found, fix)


def skip(name: str, found: str, fix: str = "") -> Check:
    return Check(name, Outcome.SKIP, found, fix)
