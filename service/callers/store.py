"""Caller API keys: generated with 256 random bits, stored as hashes, scoped, user-limited."""

from __future__ import annotations

import getpass
import hmac
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ORIGIN_CONSOLE, Actor, Target, record_event
from service.crypto.digests import lookup_digest
from service.models import Caller

KEY_PREFIX = "tsprov_"
KEY_PATTERN = re.compile(r"^tsprov_[A-Za-z0-9_-]{43}$")
SCOPES = ("provision", "read", "audit", "admin")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
USER_PATTERN = re.compile(r"^[A-Za-z0-9._@+*-]{1,128}$")
# Caller keys are managed by operators: from the command line or the /console pages.
ORIGIN_OPERATOR = ORIGIN_CONSOLE


@dataclass(frozen=True)
class AuthenticatedCaller:
    """What a request knows of the caller whose key it carries: immutable, so one value can
    be kept in memory and shared by every request with that key (``service.config_cache``)."""

    id: uuid.UUID
    name: str
    scopes: tuple[str, ...]
    user_patterns: tuple[str, ...]


class CallerError(ValueError):
    """A caller cannot be created or changed as asked."""


def generate_caller_key() -> str:
    """A new key: the prefix and 256 random bits, base64url."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_caller_key(key: str) -> bytes:
    return lookup_digest(key)


def scope_allows(granted: Sequence[str], needed: str) -> bool:
    return needed in granted or "admin" in granted


def user_allowed(patterns: Sequence[str], user_id: str) -> bool:
    """No patterns means every user; ``*`` matches any run of characters."""
    if not patterns:
        return True
    return any(_pattern_regex(pattern).fullmatch(user_id) for pattern in patterns)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


def well_formed_key(key: str) -> bool:
    return KEY_PATTERN.match(key) is not None


# Only what a request needs, as plain columns: no entity for the session to track.
_LIVE_CALLER = select(
    Caller.id, Caller.name, Caller.key_hash, Caller.scopes, Caller.user_patterns
).where(Caller.key_hash == bindparam("wanted"), Caller.revoked_at.is_(None))


async def authenticate_caller(session: AsyncSession, key: str) -> AuthenticatedCaller | None:
    """The live caller holding ``key``, or None; the hash is compared in constant time."""
    if not well_formed_key(key):
        return None
    wanted = hash_caller_key(key)
    row = (await session.execute(_LIVE_CALLER, {"wanted": wanted})).first()
    if row is None or not hmac.compare_digest(row.key_hash, wanted):
        return None
    return AuthenticatedCaller(row.id, row.name, tuple(row.scopes), tuple(row.user_patterns))


async def create_caller(
    session: AsyncSession, name: str, scopes: list[str], user_patterns: list[str]
) -> tuple[Caller, str]:
    """Create a caller and return it with its key, which is never shown again."""
    if not NAME_PATTERN.match(name):
        raise CallerError("caller names are 1-64 letters, digits, '.', '_' or '-'")
    unknown = sorted(set(scopes) - set(SCOPES))
    if not scopes or unknown:
        raise CallerError(f"scopes must be among {', '.join(SCOPES)}")
    bad = [pattern for pattern in user_patterns if not USER_PATTERN.match(pattern)]
    if bad:
        raise CallerError("user patterns use user-id characters and '*'")
    if await session.scalar(select(Caller.id).where(Caller.name == name)) is not None:
        raise CallerError(f"a caller named {name!r} exists already")
    key = generate_caller_key()
    caller = Caller(
        id=uuid.uuid4(),
        name=name,
        key_hash=hash_caller_key(key),
        scopes=sorted(set(scopes)),
        user_patterns=list(user_patterns),
    )
    session.add(caller)
    await session.flush()
    await record_event(
        session,
        origin=ORIGIN_OPERATOR,
        actor=operator_actor(),
        target=_target(caller),
        action="CREATE",
        new={"scopes": caller.scopes, "users": caller.user_patterns},
    )
    return caller, key


async def list_callers(session: AsyncSession) -> list[Caller]:
    return list(await session.scalars(select(Caller).order_by(Caller.name)))


async def revoke_caller(session: AsyncSession, name: str, actor: Actor | None = None) -> Caller:
    """Revoke by name; the actor is the CLI's operating-system account unless named."""
    caller = await session.scalar(select(Caller).where(Caller.name == name))
    if caller is None:
        raise CallerError(f"no caller named {name!r}")
    if caller.revoked_at is None:
        caller.revoked_at = datetime.now(UTC)
        await session.flush()
        await record_event(
            session,
            origin=ORIGIN_OPERATOR,
            actor=actor or operator_actor(),
            target=_target(caller),
            action="REVOKE",
            old="active",
            new="revoked",
        )
    return caller


def _target(caller: Caller) -> Target:
    # A caller key is tsprov's API key: audited like Tailscale audits its own API keys.
    return Target(id=str(caller.id), name=caller.name, type="API_KEY", property="CALLER")


def operator_actor() -> Actor:
    """Whoever runs the CLI on this machine: the operating-system account."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, as in some containers
        login = "operator"
    return Actor(id=login, type="USER", login_name=login)
