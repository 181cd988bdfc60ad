"""``tsprov audit verify`` and ``tsprov audit prune``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from service.audit.chain import verify_audit_chain
from service.audit.retention import PruneRefused, prune_audit
from service.settings import Settings

WithSessions = Callable[[Callable[[Any], Awaitable[int]]], int]


def run(args: argparse.Namespace, with_sessions: WithSessions, settings: Settings) -> int:
    if args.action == "verify":
        return with_sessions(_verify)
    return with_sessions(lambda sessions: _prune(sessions, settings.audit_retention_days))


async def _verify(sessions: Any) -> int:
    report = await verify_audit_chain(sessions)
    if report.ok:
        print(f"audit chain holds: {report.checked} events checked")
        return 0
    print(
        f"tsprov: audit chain broken at event {report.first_bad_event}: {report.reason} "
        f"({report.checked} events checked)",
        file=sys.stderr,
    )
    return 1


async def _prune(sessions: Any, retention_days: int) -> int:
    try:
        report = await prune_audit(sessions, retention_days)
    except PruneRefused as exc:
        print(f"tsprov: {exc}", file=sys.stderr)
        return 1
    print(
        f"pruned {report.pruned} events older than {report.cutoff.isoformat()} "
        f"(checkpoints: {report.checkpoints})"
    )
    return 0
