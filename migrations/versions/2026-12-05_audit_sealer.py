"""Audit appends without a lock: writers record events, a sealer chains them afterwards.

Events lose their chain columns and gain ``xid`` (the writing transaction, from the
database); seals and signed checkpoints get tables of their own. The existing chain is
checked in its old form first and the upgrade stops if it is broken, so a conversion never
vouches for history someone rewrote. Every event is then sealed in seq order (the old
chain's order) under the new hash, which also covers ``eventName``, from the latest pruning
checkpoint (or the genesis hash). Downgrading rebuilds the old chain over every event in
seq order. Stop every replica before either: the two versions write differently.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

import hashlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import rfc8785
import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from service.ops.app_role import app_role_name

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000
GENESIS_HASH = bytes(32)
# The hashed forms as they stand at this revision, kept here so that later changes to the
# service cannot change what this conversion does.
EVENT = sa.table(
    "audit_event",
    sa.column("seq", sa.BigInteger()),
    sa.column("id", sa.UUID()),
    sa.column("event_time", sa.DateTime(timezone=True)),
    sa.column("event_group_id", sa.String()),
    sa.column("origin", sa.String()),
    sa.column("actor", postgresql.JSONB()),
    sa.column("target", postgresql.JSONB()),
    sa.column("action", sa.String()),
    sa.column("event_name", sa.String()),
    sa.column("old", postgresql.JSONB(none_as_null=True)),
    sa.column("new", postgresql.JSONB(none_as_null=True)),
    sa.column("action_details", sa.Text()),
    sa.column("error", sa.Text()),
    sa.column("user_id", sa.String()),
    sa.column("prev_hash", sa.LargeBinary()),
    sa.column("hash", sa.LargeBinary()),
)
CONTENT = [column for column in EVENT.c if column.name not in ("prev_hash", "hash")]


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _content(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "eventTime": _time(row.event_time),
        "type": "CONFIG",
        "deferredAt": "0001-01-01T00:00:00Z",
        "eventGroupID": row.event_group_id,
        "origin": row.origin,
        "actor": row.actor,
        "target": row.target,
        "action": row.action,
        "old": row.old,
        "new": row.new,
        "actionDetails": row.action_details,
        "error": row.error,
        "userId": row.user_id,
    }


def _old_hash(prev_hash: bytes, row: Any) -> bytes:
    content = {**_content(row), "prevHash": prev_hash.hex()}
    return hashlib.sha256(prev_hash + rfc8785.dumps(content)).digest()


def _new_canonical(row: Any) -> bytes:
    return rfc8785.dumps({**_content(row), "eventName": row.event_name})


def _events(bind: Connection, *extra: Any) -> Iterator[Any]:
    after = 0
    while True:
        rows = bind.execute(
            sa.select(*CONTENT, *extra)
            .where(EVENT.c.seq > after)
            .order_by(EVENT.c.seq)
            .limit(BATCH)
        ).all()
        yield from rows
        if len(rows) < BATCH:
            return
        after = rows[-1].seq


def _anchor(bind: Connection) -> tuple[int, bytes]:
    """Where the kept chain starts: the latest pruning checkpoint, else the genesis hash."""
    row = bind.execute(
        sa.text("SELECT pruned_count, last_hash FROM audit_checkpoint ORDER BY id DESC LIMIT 1")
    ).first()
    return (int(row.pruned_count), bytes(row.last_hash)) if row is not None else (0, GENESIS_HASH)


def _seal_existing(bind: Connection) -> None:
    """Check the old chain event by event, and seal each under the new hash as it passes."""
    position, anchor = _anchor(bind)
    old_prev = new_prev = anchor
    seals: list[dict[str, Any]] = []
    for row in _events(bind, EVENT.c.prev_hash, EVENT.c.hash):
        if bytes(row.prev_hash) != old_prev or _old_hash(old_prev, row) != bytes(row.hash):
            raise RuntimeError(
                f"the audit chain is broken at event {row.id}; run `tsprov audit verify` with "
                "the previous version and investigate before upgrading"
            )
        old_prev = bytes(row.hash)
        canonical = _new_canonical(row)
        digest = hashlib.sha256(new_prev + canonical).digest()
        position += 1
        seals.append(
            {"position": position, "event_seq": row.seq, "prev_hash": new_prev,
             "hash": digest, "canonical": canonical}
        )  # fmt: skip
        new_prev = digest
        if len(seals) == BATCH:
            bind.execute(sa.text(_INSERT_SEAL), seals)
            seals = []
    if seals:
        bind.execute(sa.text(_INSERT_SEAL), seals)


_INSERT_SEAL = (
    "INSERT INTO audit_seal (position, event_seq, prev_hash, hash, canonical) "
    "VALUES (:position, :event_seq, :prev_hash, :hash, :canonical)"
)


def upgrade() -> None:
    # Existing events get 0, below every real transaction: they come first in chain order.
    # (xid8 has no SQLAlchemy type, hence the plain DDL.)
    op.execute("ALTER TABLE audit_event ADD COLUMN xid xid8 NOT NULL DEFAULT '0'")
    op.execute("ALTER TABLE audit_event ALTER COLUMN xid SET DEFAULT pg_current_xact_id()")
    op.create_index("ix_audit_event_xid", "audit_event", ["xid", "seq"], unique=False)
    op.create_table(
        "audit_seal",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("canonical", sa.LargeBinary(), nullable=False),
        sa.Column(
            "sealed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["event_seq"],
            ["audit_event.seq"],
            name=op.f("fk_audit_seal_event_seq_audit_event"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_audit_seal")),
        sa.UniqueConstraint("event_seq", name=op.f("uq_audit_seal_event_seq")),
    )
    op.create_table(
        "audit_signed_checkpoint",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_audit_signed_checkpoint")),
    )
    op.add_column("audit_checkpoint", sa.Column("last_position", sa.BigInteger(), nullable=True))
    op.execute("ALTER TABLE audit_checkpoint ADD COLUMN last_xid xid8")
    # Before this revision a checkpoint's running total was also the cut's chain position.
    op.execute("UPDATE audit_checkpoint SET last_position = pruned_count, last_xid = '0'")
    op.alter_column("audit_checkpoint", "last_position", nullable=False)
    op.alter_column("audit_checkpoint", "last_xid", nullable=False)
    _seal_existing(op.get_bind())
    op.drop_column("audit_event", "hash")
    op.drop_column("audit_event", "prev_hash")


def _rechain(bind: Connection) -> None:
    """The old chain over every event in seq order, sealed or not."""
    _, prev = _anchor(bind)
    updates: list[dict[str, Any]] = []
    for row in _events(bind):
        digest = _old_hash(prev, row)
        updates.append({"seq": row.seq, "prev_hash": prev, "hash": digest})
        prev = digest
        if len(updates) == BATCH:
            bind.execute(sa.text(_SET_HASH), updates)
            updates = []
    if updates:
        bind.execute(sa.text(_SET_HASH), updates)


_SET_HASH = "UPDATE audit_event SET prev_hash = :prev_hash, hash = :hash WHERE seq = :seq"


def downgrade() -> None:
    op.add_column("audit_event", sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=True))
    op.add_column("audit_event", sa.Column("hash", sa.LargeBinary(length=32), nullable=True))
    _rechain(op.get_bind())
    op.alter_column("audit_event", "prev_hash", nullable=False)
    op.alter_column("audit_event", "hash", nullable=False)
    op.drop_column("audit_checkpoint", "last_xid")
    op.drop_column("audit_checkpoint", "last_position")
    op.drop_table("audit_signed_checkpoint")
    op.drop_table("audit_seal")
    op.drop_index("ix_audit_event_xid", table_name="audit_event")
    op.drop_column("audit_event", "xid")
    # The previous revision's service inserts every column itself.
    role = app_role_name(context.config.attributes.get("app_role"))
    op.execute(
        "DO $$ BEGIN "
        f"IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') "
        f'THEN GRANT INSERT ON audit_event TO "{role}"; END IF; END $$'
    )
