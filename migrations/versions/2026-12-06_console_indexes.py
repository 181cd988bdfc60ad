"""Indexes for the operators' console: every list it shows is one index range.

Requests across users, newest first, by no filter, by status or by caller; and when each
caller last acted (the audit actor's id with the time). The status index is replaced by
one that also orders by creation: it serves every query the old one did.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_provisioning_request_created", "provisioning_request", ["created_at", "id"])
    op.create_index(
        "ix_provisioning_request_status_created",
        "provisioning_request",
        ["status", "created_at", "id"],
    )
    op.drop_index("ix_provisioning_request_status", table_name="provisioning_request")
    op.create_index(
        "ix_provisioning_request_caller_created",
        "provisioning_request",
        ["created_by", "created_at", "id"],
    )
    op.create_index(
        "ix_audit_event_actor", "audit_event", [sa.text("(actor ->> 'id')"), "event_time"]
    )


def downgrade() -> None:
    op.drop_index("ix_audit_event_actor", table_name="audit_event")
    op.drop_index("ix_provisioning_request_caller_created", table_name="provisioning_request")
    op.create_index("ix_provisioning_request_status", "provisioning_request", ["status"])
    op.drop_index("ix_provisioning_request_status_created", table_name="provisioning_request")
    op.drop_index("ix_provisioning_request_created", table_name="provisioning_request")
