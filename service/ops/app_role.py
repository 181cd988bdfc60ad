"""The service's database role: full use of the working tables, append-only on the audit trail.

``tsprov migrate`` applies this after every upgrade, so a dropped role comes back, a newly
named ``APP_ROLE`` gets its grants, and privileges granted by hand converge to these lists.
"""

from __future__ import annotations

import os
import re

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

DEFAULT_APP_ROLE = "tsprov_app"
ROLE_PATTERN = re.compile(r"[a-z_][a-z0-9_]{0,62}")

WORKING_TABLES = (
    "caller",
    "user_account",
    "consent_grant",
    "provisioning_request",
    "consent_flow",
    "idempotency_record",
    "background_run",
    "webhook_endpoint",
    "webhook_event",
    "webhook_delivery",
)
# The service may append to the trail and read it, never rewrite or delete it. The sealer
# runs as the service too: seals and signed checkpoints are rows of their own, appended.
APPEND_ONLY_TABLES = ("audit_event", "audit_link", "audit_seal", "audit_signed_checkpoint")
# Tables the service appends whole rows to; audit_event only through the columns below.
ROW_APPEND_TABLES = tuple(table for table in APPEND_ONLY_TABLES if table != "audit_event")
# An event's seq and writing transaction come from the database: the service may not choose
# them, so it cannot place an event behind the sealer's high-water mark.
AUDIT_EVENT_WRITABLE = (
    "id",
    "event_time",
    "event_group_id",
    "origin",
    "actor",
    "target",
    "action",
    "event_name",
    "old",
    "new",
    "action_details",
    "error",
    "user_id",
    "request_id",
)
# Checkpoints are written by pruning, which runs as the owner; a forged one would hide a cut.
READ_ONLY_TABLES = ("audit_checkpoint", "alembic_version")


class AppRoleError(ValueError):
    """APP_ROLE names no usable role."""


def app_role_name(configured: str | None = None) -> str:
    """The role to set up: the argument, else TSPROV_APP_ROLE, else the default; validated."""
    role = configured or os.environ.get("TSPROV_APP_ROLE") or DEFAULT_APP_ROLE
    # The name is spliced into DDL (roles cannot be bound parameters), so it must be plain.
    if not ROLE_PATTERN.fullmatch(role) or role.startswith("pg_"):
        raise AppRoleError("APP_ROLE must be a lower-case SQL identifier (a-z, 0-9, _)")
    return role


def create_role_statement(role: str) -> str:
    """SQL that creates ``role`` as NOLOGIN unless it exists."""
    role = app_role_name(role)
    # Roles belong to the whole server, and another database on it may be migrating at the
    # same moment: losing that race means the role exists, which is all that is wanted.
    return (
        "DO $$ BEGIN "
        f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') "
        f'THEN CREATE ROLE "{role}" NOLOGIN; END IF; '
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; "
        "END $$"
    )


def grant_statements(role: str) -> list[str]:
    """The GRANTs that give ``role`` exactly the privileges described in this module."""
    quoted = f'"{app_role_name(role)}"'
    every_table = ", ".join((*WORKING_TABLES, *APPEND_ONLY_TABLES, *READ_ONLY_TABLES))
    return [
        f"GRANT USAGE ON SCHEMA public TO {quoted}",
        # Start from nothing so an UPDATE or DELETE granted by hand does not survive.
        f"REVOKE ALL ON {every_table} FROM {quoted}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(WORKING_TABLES)} TO {quoted}",
        f"GRANT SELECT ON {', '.join(APPEND_ONLY_TABLES)} TO {quoted}",
        f"GRANT INSERT ON {', '.join(ROW_APPEND_TABLES)} TO {quoted}",
        f"GRANT INSERT ({', '.join(AUDIT_EVENT_WRITABLE)}) ON audit_event TO {quoted}",
        f"GRANT SELECT ON {', '.join(READ_ONLY_TABLES)} TO {quoted}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {quoted}",
    ]


async def ensure_app_role(connection: AsyncConnection, role: str) -> None:
    """Create ``role`` (NOLOGIN) when missing and grant it its privileges; idempotent."""
    role = app_role_name(role)
    await _refuse_privileged(connection, role)
    await connection.execute(text(create_role_statement(role)))
    for statement in grant_statements(role):
        await connection.execute(text(statement))


async def _refuse_privileged(connection: AsyncConnection, role: str) -> None:
    # A superuser or the tables' owner bypasses every grant: the trail would not be
    # append-only for the service, however the grants read.
    if await is_privileged(connection, role):
        raise AppRoleError(
            f"APP_ROLE {role} is a superuser or owns the tables; name a role of its own"
        )


async def is_privileged(connection: AsyncConnection, role: str) -> bool:
    """True for a superuser or the tables' owner: no grant binds them."""
    privileged = await connection.scalar(
        text(
            "SELECT r.rolsuper OR EXISTS (SELECT FROM pg_tables "
            "WHERE schemaname = 'public' AND tableowner = r.rolname) "
            "FROM pg_roles r WHERE r.rolname = :role"
        ),
        {"role": role},
    )
    return bool(privileged)


async def privilege_problems(connection: AsyncConnection, role: str) -> list[str]:
    """Where ``role``'s privileges differ from this module's lists; empty when they match."""
    expected = [(table, "DELETE", True) for table in WORKING_TABLES]
    expected += [(table, "INSERT", True) for table in ROW_APPEND_TABLES]
    expected += [
        (table, privilege, False)
        for table in APPEND_ONLY_TABLES
        for privilege in ("UPDATE", "DELETE")
    ]
    expected += [(table, "INSERT", False) for table in READ_ONLY_TABLES]
    problems = []
    for table, privilege, wanted in expected:
        held = await connection.scalar(
            text("SELECT has_table_privilege(:role, :table, :privilege)"),
            {"role": role, "table": table, "privilege": privilege},
        )
        if bool(held) != wanted:
            problems.append(f"{'lacks' if wanted else 'has'} {privilege} on {table}")
    # audit_event is insertable only through its content columns (seq and xid are the
    # database's), which has_table_privilege does not see.
    inserts_events = await connection.scalar(
        text("SELECT has_any_column_privilege(:role, 'audit_event', 'INSERT')"), {"role": role}
    )
    if not inserts_events:
        problems.append("lacks INSERT on audit_event's columns")
    return problems


RUNTIME_ROLE_QUERY = text(
    "SELECT r.rolname AS name, r.rolsuper AS superuser, "
    "(SELECT array_agg(t.tablename::text ORDER BY t.tablename) FROM pg_tables t "
    " WHERE t.schemaname = 'public' AND t.tablename = ANY(:tables) "
    " AND pg_has_role(r.rolname, t.tableowner, 'USAGE')) AS owned, "
    "(SELECT array_agg(t.tablename::text ORDER BY t.tablename) FROM pg_tables t "
    " WHERE t.schemaname = 'public' AND t.tablename = ANY(:tables) "
    " AND has_table_privilege(r.rolname, format('public.%I', t.tablename), 'UPDATE, DELETE')"
    ") AS rewritable "
    "FROM pg_roles r WHERE r.rolname = current_user"
)
AUDIT_TABLES = (*APPEND_ONLY_TABLES, "audit_checkpoint")


async def runtime_role_problems(connection: AsyncConnection) -> list[str]:
    """Why the role this connection runs as may rewrite the audit trail; empty when it cannot.

    Each reason names its fix. The owner counts through membership too: a member of the
    owning role can take on its powers with SET ROLE.
    """
    row = (await connection.execute(RUNTIME_ROLE_QUERY, {"tables": list(AUDIT_TABLES)})).one()
    if row.superuser:
        return [
            f"the database role {row.name} is a superuser; point TSPROV_DATABASE_URL at a "
            "login role granted only the app role (TSPROV_APP_ROLE, set up by tsprov migrate)"
        ]
    problems = []
    if row.owned:
        problems.append(
            f"the database role {row.name} owns (or can act as the owner of) "
            f"{', '.join(row.owned)}; run migrations as the owner but serve as a role "
            "granted only the app role (TSPROV_DATABASE_URL)"
        )
    elif row.rewritable:
        tables = ", ".join(row.rewritable)
        problems.append(
            f"the database role {row.name} may UPDATE or DELETE {tables}; "
            f"REVOKE UPDATE, DELETE ON {tables} FROM {row.name} (and from any role it inherits)"
        )
    return problems
