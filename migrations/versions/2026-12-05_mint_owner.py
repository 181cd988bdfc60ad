"""The process that owns a key mint (a dead owner's mint is settled at once), and a last look.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "provisioning_request"


def upgrade() -> None:
    # Nullable: a mint from before this revision, or one started while its process was not
    # listening, has no owner to watch and is settled by the lease alone.
    op.add_column(TABLE, sa.Column("mint_owner", sa.String(length=64), nullable=True))
    # When to look once more for a key a settled mint may have left: Tailscale may still make
    # one for a call that was in flight when its process died.
    op.add_column(TABLE, sa.Column("orphan_sweep_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column(TABLE, "orphan_sweep_at")
    op.drop_column(TABLE, "mint_owner")
