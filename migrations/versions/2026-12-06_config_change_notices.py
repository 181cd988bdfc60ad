"""Changes to callers and webhook endpoints are announced to every replica.

Each replica keeps the callers it has authenticated, and whether any endpoint listens for an
event, in memory (``service.config_cache``). A statement-level trigger sends ``NOTIFY
tsprov_config_changed`` whenever either table changes, from any client (the CLI, the console,
another replica, an operator at psql); the notice is delivered when the change commits, and
every replica then forgets what it kept.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("caller", "webhook_endpoint")


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION tsprov_config_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('tsprov_config_changed', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
            f" ON {table} FOR EACH STATEMENT EXECUTE FUNCTION tsprov_config_changed()"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_changed ON {table}")
    op.execute("DROP FUNCTION tsprov_config_changed()")
