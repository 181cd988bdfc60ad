"""A new request's row: built with every column set, and inserted in one Core statement."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.store import Along
from service.models import ProvisioningRequest

_TABLE = cast(Table, ProvisioningRequest.__table__)  # typed as any FromClause; it is the table
# Every column, bound by name (``row_<column>``, apart from an audit event's names): compiled
# once.
_INSERT_REQUEST = insert(_TABLE).values(
    {column.name: bindparam(f"row_{column.name}") for column in _TABLE.c}
)


def new_request(**fields: Any) -> ProvisioningRequest:
    """A new request with every column set: the model's defaults, then ``fields``."""
    now = datetime.now(UTC)
    defaults = {"ephemeral": False, "preauthorized": False, "tags": []}
    return ProvisioningRequest(
        id=uuid.uuid4(), **(defaults | {"created_at": now, "updated_at": now} | fields)
    )


async def insert_request(session: AsyncSession, request: ProvisioningRequest) -> None:
    """Insert ``request`` as it is, with no audit event; it stays outside the session.

    For rows written directly (the tests' set-ups): a create sends its row with the event that
    records it (``inserted_along``), through the same statement.
    """
    await session.execute(_INSERT_REQUEST, _row(request))


def inserted_along(request: ProvisioningRequest) -> Along:
    """``request``'s insert, to send with the audit event that records it (``record_events``):
    one statement where there were two, on every create."""
    return Along(_INSERT_REQUEST, _row(request))


def _row(request: ProvisioningRequest) -> dict[str, Any]:
    return {f"row_{column.name}": getattr(request, column.name) for column in _TABLE.c}
