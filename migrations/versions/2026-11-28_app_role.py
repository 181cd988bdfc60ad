"""The service's database role: full use of working tables, append-only on the audit trail.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import os
import re
from collections.abc import Sequence

from alembic import context, op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORKING_TABLES = (
    "caller",
    "user_account",
    "consent_grant",
    "provisioning_request",
    "consent_flow",
    "idempotency_record",
)
ROLE_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _role() -> str:
    role = context.config.attributes.get("app_role") or os.environ.get(
        "TSPROV_APP_ROLE", "tsprov_app"
    )
    if not ROLE_PATTERN.match(role):
        raise ValueError("TSPROV_APP_ROLE must be a lower-case SQL identifier")
    return str(role)


def upgrade() -> None:
    role = _role()
    op.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') "
        f"THEN CREATE ROLE {role} NOLOGIN; END IF; END $$"
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    tables = ", ".join(WORKING_TABLES)
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {role}")
    # The audit trail is append-only for the service: no UPDATE, no DELETE.
    op.execute(f"GRANT SELECT, INSERT ON audit_event, audit_link TO {role}")
    op.execute(f"GRANT SELECT ON audit_checkpoint, alembic_version TO {role}")
    op.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")


def downgrade() -> None:
    role = _role()
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {role}")
