"""The service's database role: full use of working tables, append-only on the audit trail.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import context, op

from service.ops.app_role import app_role_name, create_role_statement

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables as they stood at this revision. The current lists live in service/app_role.py,
# which `tsprov migrate` applies after every upgrade; a history that granted on tables a
# later revision creates could not be replayed on an empty database.
WORKING_TABLES = (
    "caller",
    "user_account",
    "consent_grant",
    "provisioning_request",
    "consent_flow",
    "idempotency_record",
)


def _role() -> tuple[str, str]:
    """The role's name, and the same name quoted, so that a keyword such as "user" works."""
    name = app_role_name(context.config.attributes.get("app_role"))
    return name, f'"{name}"'


def upgrade() -> None:
    name, role = _role()
    op.execute(create_role_statement(name))
    op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    tables = ", ".join(WORKING_TABLES)
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {role}")
    # The audit trail is append-only for the service: no UPDATE, no DELETE.
    op.execute(f"GRANT SELECT, INSERT ON audit_event, audit_link TO {role}")
    op.execute(f"GRANT SELECT ON audit_checkpoint, alembic_version TO {role}")
    op.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")


def downgrade() -> None:
    _, role = _role()
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {role}")
