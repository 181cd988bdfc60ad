"""Initial tables: callers, users, grants, provisioning requests, flows, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_checkpoint",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("pruned_count", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoint")),
    )
    op.create_table(
        "audit_event",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_group_id", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("actor", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("target", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("event_name", sa.String(length=64), nullable=False),
        sa.Column("old", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("new", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("action_details", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=True),
        sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_event")),
        sa.UniqueConstraint("id", name=op.f("uq_audit_event_id")),
    )
    op.create_index(op.f("ix_audit_event_event_name"), "audit_event", ["event_name"], unique=False)
    op.create_index("ix_audit_event_time", "audit_event", ["event_time", "seq"], unique=False)
    op.create_index("ix_audit_event_user", "audit_event", ["user_id", "event_time"], unique=False)
    op.create_table(
        "caller",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("user_patterns", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caller")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_caller_key_hash")),
        sa.UniqueConstraint("name", name=op.f("uq_caller_name")),
    )
    op.create_table(
        "consent_grant",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("login_name", sa.String(length=320), nullable=True),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("token_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("refresh_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_grant")),
    )
    op.create_index(
        "ix_consent_grant_user_status", "consent_grant", ["user_id", "status"], unique=False
    )
    op.create_table(
        "user_account",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("tailscale_login", sa.String(length=320), nullable=True),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account")),
        sa.UniqueConstraint("user_id", name=op.f("uq_user_account_user_id")),
    )
    op.create_table(
        "audit_link",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("upstream_event_group_id", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["audit_event.id"],
            name=op.f("fk_audit_link_event_id_audit_event"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_audit_link")),
    )
    op.create_table(
        "idempotency_record",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("caller_id", sa.UUID(), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("wipe_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["caller_id"],
            ["caller.id"],
            name=op.f("fk_idempotency_record_caller_id_caller"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_record")),
    )
    op.create_index(
        "uq_idempotency_record_caller_key",
        "idempotency_record",
        ["caller_id", "key_hash"],
        unique=True,
    )
    op.create_table(
        "provisioning_request",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("hostname", sa.String(length=63), nullable=True),
        sa.Column("description", sa.String(length=50), nullable=True),
        sa.Column("return_to", sa.String(length=512), nullable=True),
        sa.Column("ephemeral", sa.Boolean(), nullable=False),
        sa.Column("preauthorized", sa.Boolean(), nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("expiry_seconds", sa.Integer(), nullable=True),
        sa.Column("consent_token_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("consent_token_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("consent_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("grant_id", sa.UUID(), nullable=True),
        sa.Column("key_id", sa.String(length=64), nullable=True),
        sa.Column("key_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("mint_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("device_node_id", sa.String(length=64), nullable=True),
        sa.Column("device_name", sa.String(length=255), nullable=True),
        sa.Column("device_user", sa.String(length=320), nullable=True),
        sa.Column("device_joined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure_reason", sa.String(length=200), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["consent_grant.id"],
            name=op.f("fk_provisioning_request_grant_id_consent_grant"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provisioning_request")),
        sa.UniqueConstraint(
            "consent_token_hash", name=op.f("uq_provisioning_request_consent_token_hash")
        ),
    )
    op.create_index(
        "ix_provisioning_request_status", "provisioning_request", ["status"], unique=False
    )
    op.create_index(
        "ix_provisioning_request_user_created",
        "provisioning_request",
        ["user_id", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "consent_flow",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("state_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("browser_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("verifier_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["provisioning_request.id"],
            name=op.f("fk_consent_flow_request_id_provisioning_request"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_flow")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_consent_flow_state_hash")),
    )
    op.create_index(
        op.f("ix_consent_flow_request_id"), "consent_flow", ["request_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_consent_flow_request_id"), table_name="consent_flow")
    op.drop_table("consent_flow")
    op.drop_index("ix_provisioning_request_user_created", table_name="provisioning_request")
    op.drop_index("ix_provisioning_request_status", table_name="provisioning_request")
    op.drop_table("provisioning_request")
    op.drop_index("uq_idempotency_record_caller_key", table_name="idempotency_record")
    op.drop_table("idempotency_record")
    op.drop_table("audit_link")
    op.drop_table("user_account")
    op.drop_index("ix_consent_grant_user_status", table_name="consent_grant")
    op.drop_table("consent_grant")
    op.drop_table("caller")
    op.drop_index("ix_audit_event_user", table_name="audit_event")
    op.drop_index("ix_audit_event_time", table_name="audit_event")
    op.drop_index(op.f("ix_audit_event_event_name"), table_name="audit_event")
    op.drop_table("audit_event")
    op.drop_table("audit_checkpoint")
