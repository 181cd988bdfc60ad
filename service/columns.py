"""Column types and defaults every table shares."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, func
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType


def uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)


def string_enum(enum: type[StrEnum], length: int) -> SAEnum:
    """A StrEnum kept as its value in a plain VARCHAR: no database type to migrate."""
    return SAEnum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
    )


class TransactionId(UserDefinedType[int]):
    """Postgres ``xid8``: a 64-bit transaction id that never wraps around."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def now_column() -> Mapped[datetime]:
    # The wall clock, not now(): now() is the transaction's start, the same for every row
    # a transaction writes, which would make "newest first" ambiguous.
    return mapped_column(DateTime(timezone=True), default=_utc_now, server_default=func.now())
