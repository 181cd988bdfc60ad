"""When each background job last ran, for ``tsprov status``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # `tsprov migrate` grants the app role its rights on this table afterwards, from
    # service/ops/app_role.py, as it does for every working table.
    op.create_table(
        "background_run",
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows_changed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_background_run")),
    )


def downgrade() -> None:
    op.drop_table("background_run")
