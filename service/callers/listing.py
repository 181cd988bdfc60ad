"""Callers as operators see them: scopes, user patterns, created, revoked and last used."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import store as audit_store
from service.callers.store import list_callers


@dataclass(frozen=True)
class CallerEntry:
    id: uuid.UUID
    name: str
    scopes: list[str]
    user_patterns: list[str]
    created_at: datetime
    revoked_at: datetime | None
    # Its latest audited action: every create, claim, cancel and refusal is one; plain
    # reads are not audited, so a caller that only reads shows its last change.
    last_used_at: datetime | None


async def callers_with_last_use(session: AsyncSession) -> list[CallerEntry]:
    """Every caller by name (there are tens, not thousands), never a key or its hash."""
    callers = await list_callers(session)
    used = await audit_store.latest_action_times(session, [str(c.id) for c in callers])
    return [
        CallerEntry(
            id=caller.id,
            name=caller.name,
            scopes=list(caller.scopes),
            user_patterns=list(caller.user_patterns),
            created_at=caller.created_at,
            revoked_at=caller.revoked_at,
            last_used_at=used.get(str(caller.id)),
        )
        for caller in callers
    ]
