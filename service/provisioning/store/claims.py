"""A claim's two writes on ``provisioning_request``, each one statement that checks and writes:
the mint's intent, and the minted key handed out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from service.grants.store import with_grant
from service.models import ConsentGrant, ProvisioningRequest
from service.provisioning.status import RequestStatus

_REQUESTS = cast(Table, ProvisioningRequest.__table__)  # typed as any FromClause; it is the table

# Both statements are built once: built at each call, the outcome's (with its RETURNING of
# every column) cost more of the ORM's CPU than the two statements it replaces.
# A claim's intent to mint, taken only on a ready request with no mint in flight; the
# request's grant comes back with it, read in the same statement.
_MARKED = (
    update(_REQUESTS)
    .where(
        _REQUESTS.c.id == bindparam("request_id"),
        _REQUESTS.c.status == RequestStatus.READY,
        _REQUESTS.c.mint_started_at.is_(None),
    )
    .values(mint_started_at=bindparam("started"), mint_owner=bindparam("owner"))
    .returning(*_REQUESTS.c)
    .cte("marked")
)
_MARKED_REQUEST = aliased(ProvisioningRequest, _MARKED)
_MARK_MINT_STARTED = with_grant(select(_MARKED_REQUEST), _MARKED.c.grant_id)


async def mark_mint_started(
    session: AsyncSession, request_id: uuid.UUID, owner: str | None
) -> tuple[ProvisioningRequest, ConsentGrant | None] | None:
    """The request, locked, with ``mint_started_at`` set now and ``owner`` as its
    ``mint_owner``, and its grant, if it is ``ready`` with no mint in flight; else None,
    nothing written. Both are in the session, as if read there.

    One statement where reading the row FOR UPDATE, flushing the change and reading the
    grant cost three.
    """
    params = {"request_id": request_id, "started": datetime.now(UTC), "owner": owner}
    row = (await session.execute(_MARK_MINT_STARTED, params)).one_or_none()
    return (row[0], row[1]) if row is not None else None


# A mint's outcome, recorded only while the request is still that mint's.
_CLAIM_WITH_MINTED_KEY = (
    update(_REQUESTS)
    .where(
        _REQUESTS.c.id == bindparam("request_id"),
        _REQUESTS.c.status == RequestStatus.READY,
        _REQUESTS.c.mint_started_at == bindparam("started"),
    )
    .values(
        status=RequestStatus.CLAIMED,
        key_id=bindparam("key_id"),
        key_expires_at=bindparam("key_expires_at"),
        mint_started_at=None,
        claimed_at=bindparam("now"),
        updated_at=bindparam("now"),
        consent_token_ciphertext=None,  # as every move out of awaiting_consent does
    )
    .returning(*_REQUESTS.c)
)


async def claim_with_minted_key(
    session: AsyncSession,
    request_id: uuid.UUID,
    started: datetime,
    key_id: str,
    key_expires_at: datetime | None,
) -> ProvisioningRequest | None:
    """The request claimed with its minted key if it is still the mint's (``ready``, with the
    ``mint_started_at`` this claim committed), as a plain object the session does not track;
    None, with nothing written, when it is not (cancelled, or settled and taken again).

    One Core UPDATE locks, checks (again on the newest row version if it waited for the lock)
    and writes, where reading the row FOR UPDATE and flushing it cost two statements.
    """
    params = {"request_id": request_id, "started": started, "now": datetime.now(UTC)}
    params |= {"key_id": key_id, "key_expires_at": key_expires_at}
    row = (await session.execute(_CLAIM_WITH_MINTED_KEY, params)).one_or_none()
    return ProvisioningRequest(**row._mapping) if row is not None else None
