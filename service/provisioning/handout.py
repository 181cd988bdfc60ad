"""The answer a claim hands out: the key and a ready ``tailscale up`` line."""

from __future__ import annotations

import shlex
from datetime import datetime

from service.provisioning.schemas import ClaimOut


def tailscale_up_line(auth_key: str, hostname: str | None) -> str:
    parts = ["tailscale", "up", f"--auth-key={auth_key}"]
    if hostname:
        parts.append(f"--hostname={hostname}")
    return " ".join(shlex.quote(part) for part in parts)


def claim_answer(auth_key: str, expires_at: datetime | None, hostname: str | None) -> ClaimOut:
    return ClaimOut(
        auth_key=auth_key,
        expires_at=expires_at,
        tailscale_up=tailscale_up_line(auth_key, hostname),
    )
