"""What a walk of the audit chain reports, and what it may be asked to find."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VERIFY_BATCH = 5000


@dataclass(frozen=True)
class Expectation:
    """A published checkpoint: the event ``seq`` must still be in the chain with ``hash``."""

    seq: int
    hash: bytes

    @classmethod
    def parse(cls, text: str) -> Expectation:
        seq, separator, digest = text.partition(":")
        try:
            parsed = cls(int(seq), bytes.fromhex(digest))
        except ValueError as exc:
            raise ValueError("expected SEQ:HASH, the hash as 64 hex digits") from exc
        if not separator or len(parsed.hash) != 32:
            raise ValueError("expected SEQ:HASH, the hash as 64 hex digits")
        return parsed


@dataclass(frozen=True)
class ChainReport:
    """``first_bad_event`` is the id of the first event out of place, ``reason`` says how."""

    ok: bool
    checked: int
    first_bad_event: str | None = None
    reason: str | None = None
    pending: int = 0
    checkpoint: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "pending": self.pending,
            "checkpoint": self.checkpoint,
            "first_bad_event": self.first_bad_event,
            "reason": self.reason,
        }
