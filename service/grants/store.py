"""Grant storage: every query on ``consent_grant``, sealing tokens, and status changes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    DateTime,
    Select,
    bindparam,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from service.audit.events import Actor, Target, format_optional_time, record_event
from service.crypto.keyring import KeyRing
from service.crypto.sealed import token_context
from service.grants.status import GrantMode, GrantStatus
from service.models import ConsentGrant
from service.tailscale.client import TokenGrant
from service.webhooks.publish import publish_grant_change

ONE_TIME_KEY_LIFETIME = 3600
_AUTH_KEY_ID = re.compile(r"^tskey-auth-([A-Za-z0-9]+)-")


def grant_target(grant: ConsentGrant, prop: str = "") -> Target:
    return Target(id=str(grant.id), name=grant.user_id, type="GRANT", property=prop)


def auth_key_id(key: str) -> str:
    """The key id inside ``tskey-auth-<id>-<secret>``, or '' when the shape is unknown."""
    match = _AUTH_KEY_ID.match(key)
    return match.group(1) if match else ""


def grant_mode(token: TokenGrant, configured_scope: str) -> GrantMode:
    scope = token.scope or configured_scope
    return (
        GrantMode.REUSABLE
        if token.refresh_token is not None or ":once" not in scope
        else GrantMode.ONCE
    )


def _live_reusable_grant_query(user_id: BindParameter[str]) -> Select[ConsentGrant]:
    """The user's newest active reusable grant not past its expiry (``:now``)."""
    return (
        select(ConsentGrant)
        .where(
            ConsentGrant.user_id == user_id,
            ConsentGrant.mode == GrantMode.REUSABLE,
            ConsentGrant.status == GrantStatus.ACTIVE,
            or_(
                ConsentGrant.expires_at.is_(None),
                ConsentGrant.expires_at > bindparam("now", type_=DateTime(timezone=True)),
            ),
        )
        .order_by(ConsentGrant.created_at.desc())
        .limit(1)
    )


# Built once: composing it anew for every call cost more CPU than running it.
_LIVE_REUSABLE_GRANT = _live_reusable_grant_query(bindparam("user_id"))


def with_live_reusable_grant(rows: Select[Any], user_id: BindParameter[str]) -> Select[Any]:
    """``rows`` with the user's live reusable grant as a last column (None when none is)."""
    live = _live_reusable_grant_query(user_id).subquery("live")
    return rows.add_columns(aliased(ConsentGrant, live)).outerjoin(live, true())


def with_grant(rows: Select[Any], grant_id: ColumnElement[uuid.UUID]) -> Select[Any]:
    """``rows`` with the grant ``grant_id`` names as a last column (None when none is)."""
    return rows.add_columns(ConsentGrant).outerjoin(ConsentGrant, ConsentGrant.id == grant_id)


async def find_live_reusable_grant(session: AsyncSession, user_id: str) -> ConsentGrant | None:
    return await session.scalar(
        _LIVE_REUSABLE_GRANT, {"user_id": user_id, "now": datetime.now(UTC)}
    )


def seal_tokens(grant: ConsentGrant, key_ring: KeyRing, token: TokenGrant) -> None:
    """Seal the access token, and the refresh token when one came (else keep the old one)."""
    now = datetime.now(UTC)
    lifetime = token.expires_in or ONE_TIME_KEY_LIFETIME
    grant.token_ciphertext = key_ring.encrypt_text(
        token.access_token.get_secret_value(), token_context(grant, "token")
    )
    grant.token_expires_at = now + timedelta(seconds=lifetime)
    if token.refresh_token is not None:
        grant.refresh_ciphertext = key_ring.encrypt_text(
            token.refresh_token.get_secret_value(), token_context(grant, "refresh")
        )
    if grant.refresh_ciphertext is None:
        grant.expires_at = grant.token_expires_at


def mark_identity_verified(grant: ConsentGrant, login: str) -> None:
    """The consenting login is confirmed as the user's: later claims need not check again."""
    grant.login_name = login
    grant.identity_verified_at = grant.updated_at = datetime.now(UTC)


def wipe_tokens(grant: ConsentGrant) -> None:
    grant.token_ciphertext = None
    grant.refresh_ciphertext = None
    grant.updated_at = datetime.now(UTC)


async def store_grant(
    session: AsyncSession,
    key_ring: KeyRing,
    token: TokenGrant,
    *,
    user_id: str,
    scope: str,
    actor: Actor,
    origin: str,
) -> ConsentGrant:
    """Keep what a consent yielded, sealed, and audit it (and the key, for one-time grants)."""
    grant = ConsentGrant(
        id=uuid.uuid4(),
        user_id=user_id,
        mode=grant_mode(token, scope),
        status=GrantStatus.ACTIVE,
        login_name=token.login_name,
        scope=token.scope or scope,
    )
    seal_tokens(grant, key_ring, token)
    session.add(grant)
    await session.flush()
    await _audit_new_grant(session, grant, token, actor, origin)
    return grant


async def _audit_new_grant(
    session: AsyncSession, grant: ConsentGrant, token: TokenGrant, actor: Actor, origin: str
) -> None:
    expires = format_optional_time(grant.expires_at)
    await record_event(
        session,
        origin=origin,
        actor=actor,
        target=grant_target(grant),
        action="CREATE",
        new={"mode": grant.mode, "status": grant.status, "expiresAt": expires},
        user_id=grant.user_id,
    )
    if grant.mode == GrantMode.ONCE:
        key_id = auth_key_id(token.access_token.get_secret_value())
        await record_event(
            session,
            origin=origin,
            actor=actor,
            target=Target(id=key_id, name=grant.user_id, type="API_KEY"),
            action="CREATE",
            new={"expiresAt": expires},
            details="one-time key from consent",
            user_id=grant.user_id,
        )


async def set_grant_status(
    session: AsyncSession,
    grant: ConsentGrant,
    status: GrantStatus,
    *,
    actor: Actor,
    origin: str,
    action: str,
    error: str = "",
) -> None:
    old = grant.status
    grant.status = status
    wipe_tokens(grant)
    await session.flush()
    await publish_grant_change(session, grant)
    await record_event(
        session,
        origin=origin,
        actor=actor,
        target=grant_target(grant, "STATUS"),
        action=action,
        old=old,
        new=status,
        error=error,
        user_id=grant.user_id,
    )


async def load_grant(session: AsyncSession, grant_id: uuid.UUID | None) -> ConsentGrant | None:
    if grant_id is None:
        return None
    return await session.get(ConsentGrant, grant_id)


async def stamp_last_used(session: AsyncSession, grant_id: uuid.UUID, at: datetime) -> None:
    """Set when the grant last gave a key, without reading the row first."""
    await session.execute(
        update(ConsentGrant).where(ConsentGrant.id == grant_id).values(last_used_at=at)
    )


async def try_lock_grant(session: AsyncSession, grant_id: uuid.UUID) -> ConsentGrant | None:
    """The grant under its row lock, or None while another transaction holds that lock."""
    return await session.scalar(
        select(ConsentGrant).where(ConsentGrant.id == grant_id).with_for_update(skip_locked=True)
    )


async def grants_by_id(
    session: AsyncSession, grant_ids: Iterable[uuid.UUID | None]
) -> dict[uuid.UUID, ConsentGrant]:
    """Many grants in one query (a page of requests names one each)."""
    wanted = {grant_id for grant_id in grant_ids if grant_id is not None}
    if not wanted:
        return {}
    rows = await session.scalars(select(ConsentGrant).where(ConsentGrant.id.in_(wanted)))
    return {grant.id: grant for grant in rows}


async def grants_of_user(
    session: AsyncSession, user_id: str, limit: int | None = None
) -> list[ConsentGrant]:
    """A user's grants, newest first (the newest ``limit`` when given)."""
    query = select(ConsentGrant).where(ConsentGrant.user_id == user_id)
    return list(await session.scalars(query.order_by(ConsentGrant.created_at.desc()).limit(limit)))


async def grants_verified_as(session: AsyncSession, login: str, limit: int) -> list[ConsentGrant]:
    """Grants whose consenting login Tailscale confirmed as ``login`` (any case), newest first."""
    query = select(ConsentGrant).where(func.lower(ConsentGrant.login_name) == login.lower())
    return list(await session.scalars(query.order_by(ConsentGrant.created_at.desc()).limit(limit)))


async def grant_counts(
    session: AsyncSession, user_ids: list[str]
) -> dict[str, dict[GrantStatus, int]]:
    """How many grants each of these users holds in each status (for a page of users)."""
    query = (
        select(ConsentGrant.user_id, ConsentGrant.status, func.count())
        .where(ConsentGrant.user_id.in_(user_ids))
        .group_by(ConsentGrant.user_id, ConsentGrant.status)
    )
    counted: dict[str, dict[GrantStatus, int]] = {user_id: {} for user_id in user_ids}
    for user_id, status, count in await session.execute(query):
        counted[user_id][status] = int(count)
    return counted


async def lock_live_grants(session: AsyncSession, user_id: str) -> list[ConsentGrant]:
    """A user's grants that could still serve a key, locked in a fixed order."""
    query = select(ConsentGrant).where(
        ConsentGrant.user_id == user_id,
        ConsentGrant.status.in_((GrantStatus.ACTIVE, GrantStatus.NEEDS_CONSENT)),
    )
    return list(await session.scalars(query.order_by(ConsentGrant.id).with_for_update()))


async def expire_overdue_grants(session: AsyncSession, actor: Actor, origin: str) -> int:
    """Active grants past their expiry become ``expired`` (up to 500 per run)."""
    now = datetime.now(UTC)
    grants = await session.scalars(
        select(ConsentGrant)
        .where(ConsentGrant.status == GrantStatus.ACTIVE, ConsentGrant.expires_at < now)
        .with_for_update(skip_locked=True)
        .limit(500)
    )
    count = 0
    for grant in grants:
        await set_grant_status(
            session, grant, GrantStatus.EXPIRED, actor=actor, origin=origin, action="EXPIRED"
        )
        count += 1
    return count


async def count_grants_by_status(session: AsyncSession) -> dict[str, int]:
    """How many grants hold each status, every status present (for the metrics gauge)."""
    rows = await session.execute(
        select(ConsentGrant.status, func.count()).group_by(ConsentGrant.status)
    )
    counted = {str(status): int(count) for status, count in rows}
    return {status.value: counted.get(status.value, 0) for status in GrantStatus}
