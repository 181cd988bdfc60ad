"""Indexes to find what a tailnet login holds: users expecting it, grants it gave.

/me looks both up on every visit, by the login Tailscale Serve names, in any case.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_user_account_login", "user_account", [sa.text("lower(tailscale_login)")])
    op.create_index("ix_consent_grant_login", "consent_grant", [sa.text("lower(login_name)")])


def downgrade() -> None:
    op.drop_index("ix_consent_grant_login", table_name="consent_grant")
    op.drop_index("ix_user_account_login", table_name="user_account")
