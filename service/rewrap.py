"""``tsprov keys rewrap``: move every sealed value to the primary key.

Row by row, each in its own short transaction with ``SKIP LOCKED``, so it is safe while the
service runs and can be stopped and started again at any point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.crypto import CipherContext, KeyRing, key_id_of
from service.db import transaction
from service.models import ConsentFlow, ConsentGrant, IdempotencyRecord, ProvisioningRequest


@dataclass(frozen=True)
class SealedColumn:
    model: Any
    attribute: str
    context: Callable[[Any], CipherContext]


SEALED_COLUMNS = (
    SealedColumn(
        ConsentGrant,
        "token_ciphertext",
        lambda row: CipherContext("consent_grant", "token", str(row.id), row.user_id),
    ),
    SealedColumn(
        ConsentGrant,
        "refresh_ciphertext",
        lambda row: CipherContext("consent_grant", "refresh", str(row.id), row.user_id),
    ),
    SealedColumn(
        ProvisioningRequest,
        "consent_token_ciphertext",
        lambda row: CipherContext(
            "provisioning_request", "consent_token", str(row.id), row.user_id
        ),
    ),
    SealedColumn(
        ConsentFlow,
        "verifier_ciphertext",
        lambda row: CipherContext("consent_flow", "verifier", str(row.id), str(row.request_id)),
    ),
    SealedColumn(
        IdempotencyRecord,
        "response_ciphertext",
        lambda row: CipherContext(
            "idempotency_record", "response", str(row.id), str(row.caller_id)
        ),
    ),
)
BATCH = 200


async def rewrap_all(sessions: async_sessionmaker[AsyncSession], key_ring: KeyRing) -> int:
    """Re-seal every value not under the primary key; returns how many moved."""
    moved = 0
    for column in SEALED_COLUMNS:
        moved += await _rewrap_column(sessions, key_ring, column)
    return moved


async def _rewrap_column(
    sessions: async_sessionmaker[AsyncSession], key_ring: KeyRing, column: SealedColumn
) -> int:
    moved, last_id = 0, None
    attribute = getattr(column.model, column.attribute)
    while True:
        async with transaction(sessions) as session:
            query = select(column.model).where(attribute.is_not(None)).order_by(column.model.id)
            if last_id is not None:
                query = query.where(column.model.id > last_id)
            rows = list(await session.scalars(query.limit(BATCH).with_for_update(skip_locked=True)))
            for row in rows:
                blob = getattr(row, column.attribute)
                if key_id_of(blob) != key_ring.primary_id:
                    context = column.context(row)
                    plain = key_ring.decrypt(blob, context)  # a removed key fails loudly here
                    setattr(row, column.attribute, key_ring.encrypt(plain, context))
                    moved += 1
        if len(rows) < BATCH:
            return moved
        last_id = rows[-1].id
