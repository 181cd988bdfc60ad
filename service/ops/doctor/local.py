"""Checks on what tsprov holds itself: settings, the database and its role, the key ring."""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.audit.signing import SigningKeyError
from service.crypto.keyring import KeyRingError
from service.crypto.rewrap import sealed_values_by_key
from service.main import load_audit_signer, load_key_ring
from service.ops.app_role import is_privileged, privilege_problems
from service.ops.doctor.report import Check, fail, ok, skip, warn
from service.settings import Settings

ROLE_FIX = "run `tsprov migrate` as the schema owner, and serve as a login IN ROLE APP_ROLE"


def check_settings(loaded: Settings | ValidationError) -> list[Check]:
    """The settings ``tsprov serve`` would start with, or why it would refuse them."""
    if isinstance(loaded, ValidationError):
        errors = loaded.errors(include_input=False, include_url=False)
        reason = "; ".join(e["msg"].removeprefix("Value error, ") for e in errors)
        fix = "set what the message names (README: Production configuration)"
        return [fail("settings", reason, fix)]
    settings = loaded
    checks = [ok("settings", f"valid for {settings.env}")]
    if settings.env == "development":
        checks.append(warn("environment", "development", "set TSPROV_ENV=production to deploy"))
    if not settings.observer_client_id:
        checks.append(
            warn(
                "observer",
                "none configured: no join detection, device deletion or key-owner checks",
                "set TSPROV_OBSERVER_CLIENT_ID and _SECRET (an OAuth client)",
            )
        )
    return checks


async def check_database(engine: AsyncEngine, settings: Settings, head: str) -> list[Check]:
    """Reachable, migrated, and the role the service runs as bound by its grants."""
    try:
        async with engine.connect() as connection:
            user = await connection.scalar(text("SELECT current_user"))
            version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
            privileged = await is_privileged(connection, str(user))
            role_exists = await connection.scalar(
                text("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = :r)"),
                {"r": settings.app_role},
            )
            problems = (
                await privilege_problems(connection, settings.app_role) if role_exists else []
            )
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
        return [fail("database", reason, "check TSPROV_DATABASE_URL and that Postgres answers")]
    checks = [ok("database", f"reachable as {user}")]
    if version != head:
        checks.append(fail("migrations", f"at {version}, head is {head}", "run `tsprov migrate`"))
    else:
        checks.append(ok("migrations", f"at head ({head})"))
    checks.append(_role_check(settings, str(user), privileged, bool(role_exists), problems))
    return checks


def _role_check(
    settings: Settings, user: str, privileged: bool, role_exists: bool, problems: list[str]
) -> Check:
    role = settings.app_role
    if not role_exists:
        return fail("database role", f"APP_ROLE {role} does not exist", ROLE_FIX)
    if problems:
        return fail("database role", f"{role} " + ", ".join(problems), ROLE_FIX)
    if privileged:
        found = (
            f"{user} is a superuser or owns the tables: the audit trail is not append-only for it"
        )
        make = fail if settings.env == "production" else warn
        return make("database role", found, ROLE_FIX)
    return ok("database role", f"{role} may append to the audit trail, never rewrite it")


async def check_encryption_keys(
    settings: Settings, sessions: async_sessionmaker[AsyncSession] | None
) -> Check:
    """The ring loads, and every sealed value is under a key it holds."""
    try:
        ring = load_key_ring(settings)
    except (KeyRingError, OSError) as exc:
        return fail("encryption keys", f"cannot load: {exc}", "fix TSPROV_ENCRYPTION_KEYS(_FILE)")
    if ring is None:
        return fail(
            "encryption keys",
            "none configured",
            "`tsprov keys generate` into TSPROV_ENCRYPTION_KEYS_FILE",
        )
    if sessions is None:
        return skip(
            "encryption keys", f"ring loads (primary {ring.primary_id}); database not reachable"
        )
    try:
        in_use = await sealed_values_by_key(sessions)
    except (SQLAlchemyError, OSError):
        return skip(
            "encryption keys", f"ring loads (primary {ring.primary_id}); database not readable"
        )
    missing = sorted(set(in_use) - ring.key_ids)
    if missing:
        return fail(
            "encryption keys",
            f"values sealed under {', '.join(missing)}, missing from the ring",
            "put those keys back in the ring (after the primary)",
        )
    older = sum(count for key_id, count in in_use.items() if key_id != ring.primary_id)
    if older:
        return warn(
            "encryption keys",
            f"{older} values under older keys of the ring",
            "run `tsprov keys rewrap` before removing any key",
        )
    return ok("encryption keys", f"ring loads; every sealed value is under {ring.primary_id}")


def check_signing_key(settings: Settings) -> Check:
    """The audit signing key loads: without it no checkpoint is signed."""
    try:
        signer = load_audit_signer(settings)
    except (SigningKeyError, OSError) as exc:
        return fail(
            "audit signing key", f"cannot load: {exc}", "fix TSPROV_AUDIT_SIGNING_KEY(_FILE)"
        )
    if signer is None:
        # Production refuses to start without one; a development stack can do without.
        report = fail if settings.env == "production" else warn
        return report(
            "audit signing key",
            "none configured: checkpoints go unsigned",
            "`tsprov keys generate --signing` into TSPROV_AUDIT_SIGNING_KEY_FILE",
        )
    return ok("audit signing key", f"loads (key id {signer.key_id})")
