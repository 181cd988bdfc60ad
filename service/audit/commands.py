"""``tsprov audit verify [--expect SEQ:HASH]``, ``tsprov audit seal`` and ``audit prune``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from service.audit.chain import Expectation, verify_audit_chain
from service.audit.retention import PruneRefused, prune_audit
from service.audit.sealer import seal_audit_trail_now
from service.audit.signing import AuditSigner
from service.settings import Settings

WithSessions = Callable[[Callable[[Any], Awaitable[int]]], int]


class ExpectationError(ValueError):
    """``--expect`` is not ``SEQ:HASH``."""


def run(args: argparse.Namespace, with_sessions: WithSessions, settings: Settings) -> int:
    text = settings.audit_signing_key_text
    signer = AuditSigner.parse(text) if text else None
    if args.action == "verify":
        expect = _expectation(args.expect)
        return with_sessions(lambda sessions: _verify(sessions, signer, expect))
    if args.action == "seal":
        return with_sessions(lambda sessions: _seal(sessions, signer))
    return with_sessions(lambda sessions: _prune(sessions, settings.audit_retention_days, signer))


def _expectation(text: str | None) -> Expectation | None:
    if text is None:
        return None
    try:
        return Expectation.parse(text)
    except ValueError as exc:
        raise ExpectationError(f"--expect: {exc}") from exc


async def _verify(sessions: Any, signer: AuditSigner | None, expect: Expectation | None) -> int:
    report = await verify_audit_chain(sessions, signer, expect)
    if report.ok:
        anchor = f", up to the checkpoint at count {report.checkpoint}" if report.checkpoint else ""
        print(
            f"audit chain holds: {report.checked} sealed events checked{anchor}; "
            f"{report.pending} waiting to be sealed"
        )
        return 0
    where = f" at event {report.first_bad_event}" if report.first_bad_event else ""
    print(
        f"tsprov: audit chain broken{where}: {report.reason} ({report.checked} events checked)",
        file=sys.stderr,
    )
    return 1


async def _seal(sessions: Any, signer: AuditSigner | None) -> int:
    """What the background job does each tick, now; prints the checkpoint to publish."""
    sealed = await seal_audit_trail_now(sessions, signer)
    print(f"sealed {sealed.sealed} events")
    if sealed.checkpoint is not None:
        checkpoint = sealed.checkpoint
        print(f"checkpoint {checkpoint.event_seq}:{checkpoint.hash.hex()}")
    return 0


async def _prune(sessions: Any, retention_days: int, signer: AuditSigner | None) -> int:
    try:
        report = await prune_audit(sessions, retention_days, signer=signer)
    except PruneRefused as exc:
        print(f"tsprov: {exc}", file=sys.stderr)
        return 1
    print(
        f"pruned {report.pruned} events older than {report.cutoff.isoformat()} "
        f"(checkpoints: {report.checkpoints})"
    )
    return 0
