"""Long-polls are woken by a trigger on provisioning_request, not by a statement of the app's.

The NOTIFY is sent inside the transaction that changes the row, as the app's own
``pg_notify`` was, so it is delivered only if, and when, the change commits; the app saves
a round trip per change. It fires when the status changes, and when a key mint is cleared
(settled by the reconciler, or ended without a key), as the app's calls did.

The channel is service/provisioning/notify.py's CHANNEL, written out: a migration must not
change meaning when the code moves on.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION tsprov_request_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('tsprov_request_changed', NEW.id::text);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER provisioning_request_changed
        AFTER UPDATE OF status, mint_started_at ON provisioning_request
        FOR EACH ROW
        WHEN (
            OLD.status IS DISTINCT FROM NEW.status
            OR (OLD.mint_started_at IS NOT NULL AND NEW.mint_started_at IS NULL)
        )
        EXECUTE FUNCTION tsprov_request_changed()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER provisioning_request_changed ON provisioning_request")
    op.execute("DROP FUNCTION tsprov_request_changed()")
