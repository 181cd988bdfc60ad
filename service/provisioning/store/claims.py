"""A claim's two writes on ``provisioning_request``, each one statement that checks and writes:
the mint's intent, and the minted key handed out (sent with its audit events)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from service.audit.store import Along
from service.grants.store import with_grant
from service.models import ConsentGrant, ProvisioningRequest
from service.provisioning.status import RequestStatus

_REQUESTS = cast(Table, ProvisioningRequest.__table__)  # typed as any FromClause; it is the table


def _claimed(key_id: str, key_expires_at: datetime | None, now: datetime) -> dict[str, object]:
    """What a hand-out writes: sent as the UPDATE's values, and set on the claimed object."""
    return {
        "status": RequestStatus.CLAIMED,
        "key_id": key_id,
        "key_expires_at": key_expires_at,
        "mint_started_at": None,
        "claimed_at": now,
        "updated_at": now,
        "consent_token_ciphertext": None,  # as every move out of awaiting_consent does
    }


# The UPDATE's columns, named once above, with the values they are set to.
_CLAIMED_COLUMNS = tuple(_claimed("", None, datetime.now(UTC)))

# Both statements are built once: built at each call, a statement with a RETURNING of every
# column cost more of the ORM's CPU than the two statements it replaced.
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


# A mint's outcome, recorded only while the request is still that mint's. Its parameters are
# named ``claim_*``, apart from those of the audit events it is sent with.
_CLAIMED_WITH = (
    update(_REQUESTS)
    .where(
        _REQUESTS.c.id == bindparam("claim_request_id"),
        _REQUESTS.c.status == RequestStatus.READY,
        _REQUESTS.c.mint_started_at == bindparam("claim_started"),
    )
    .values({name: bindparam(f"claim_{name}") for name in _CLAIMED_COLUMNS})
    .returning(_REQUESTS.c.id)
)


@dataclass(frozen=True)
class MintedKeyClaim:
    """A claim's hand-out, to send with the audit events that record it (``record_events``,
    which writes them only if it wrote the row): one statement where there were two.

    ``request`` is the row as the update leaves it, built from the one the mint's intent
    read. What the hand-out reads of it (the answer, the audit events, the webhook: its id,
    user, grant, hostname, device and failure reason) no one else writes while the mint is in
    flight: a cancel or a settled mint changes ``status`` or ``mint_started_at`` instead, and
    then the update writes nothing. Only ``orphan_sweep_at`` may be newer in the table.
    """

    request: ProvisioningRequest
    along: Along


def claim_with_minted_key(
    request: ProvisioningRequest,
    started: datetime,
    key_id: str,
    key_expires_at: datetime | None,
) -> MintedKeyClaim:
    """``request`` claimed with its minted key, if it is still the mint's: ``ready``, with the
    ``mint_started_at`` this claim committed (``started``). Not cancelled, nor settled and
    taken again: else the update writes nothing, and nor do the events sent with it.

    The UPDATE locks, checks (again on the newest row version if it waited for the lock) and
    writes in one statement.
    """
    claimed = _claimed(key_id, key_expires_at, datetime.now(UTC))
    row = {column.name: getattr(request, column.name) for column in _REQUESTS.c}
    parameters = {f"claim_{name}": value for name, value in claimed.items()}
    parameters |= {"claim_request_id": request.id, "claim_started": started}
    return MintedKeyClaim(
        ProvisioningRequest(**(row | claimed)),
        Along(_CLAIMED_WITH, parameters, required=True),
    )
