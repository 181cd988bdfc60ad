"""Device approval and node attributes: what tsprov knows of a joined device at Tailscale.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "provisioning_request"


def upgrade() -> None:
    # Nullable, no default: rows from before this revision did not look, so they say nothing.
    op.add_column(TABLE, sa.Column("device_authorized", sa.Boolean(), nullable=True))
    op.add_column(TABLE, sa.Column("device_attribute", sa.String(length=128), nullable=True))
    op.add_column(
        TABLE, sa.Column("device_followed_up_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column(TABLE, "device_followed_up_at")
    op.drop_column(TABLE, "device_attribute")
    op.drop_column(TABLE, "device_authorized")
