"""Users: the people callers name, and the Tailscale login expected to consent for them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CompoundSelect,
    Executable,
    bindparam,
    column,
    exists,
    false,
    func,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from service.audit.events import Actor, Target, record_event
from service.grants.store import (
    find_live_reusable_grant,
    grants_of_user,
    with_live_reusable_grant,
)
from service.models import ConsentGrant, UserAccount
from service.users.schemas import GrantOut, UserOut, UserUpdate
from service.web.errors import NotFound


def user_target(user: UserAccount, prop: str = "") -> Target:
    return Target(id=str(user.id), name=user.user_id, type="USER", property=prop)


async def find_user(session: AsyncSession, user_id: str) -> UserAccount | None:
    return await session.scalar(select(UserAccount).where(UserAccount.user_id == user_id))


async def page_of_users(
    session: AsyncSession, after_user_id: str | None, limit: int
) -> list[UserAccount]:
    """Up to ``limit + 1`` users in ``user_id`` order after the given one (keyset on the
    unique index)."""
    query = select(UserAccount)
    if after_user_id is not None:
        query = query.where(UserAccount.user_id > after_user_id)
    return list(await session.scalars(query.order_by(UserAccount.user_id).limit(limit + 1)))


async def users_expecting(session: AsyncSession, login: str, limit: int) -> list[UserAccount]:
    """Users whose expected Tailscale login was set to ``login`` (logins ignore case)."""
    query = select(UserAccount).where(func.lower(UserAccount.tailscale_login) == login.lower())
    return list(await session.scalars(query.order_by(UserAccount.user_id).limit(limit)))


async def ensure_user(
    session: AsyncSession, actor: Actor, user_id: str, *, origin: str
) -> UserAccount:
    """The user, created (and audited) on first mention; safe under concurrent first use.

    Usually one statement: the insert, skipped when the user exists, and else the existing
    row. When another transaction inserted the user after this statement's snapshot was
    taken, the insert waits for it and skips, and the snapshot cannot see its row: then
    the row is read again, with a new snapshot.
    """
    found = (
        await session.execute(_USER_UPSERT, {"new_id": uuid.uuid4(), "wanted": user_id})
    ).one_or_none()
    user: UserAccount | None = found[0] if found else None
    if user is None:
        user = await find_user(session, user_id)
    if user is None:  # only if deleted in between
        raise NotFound("No such user.")
    if found and found[1]:
        await _audit_created(session, actor, user, origin)
    return user


async def ensure_user_with_live_grant(
    session: AsyncSession, actor: Actor, user_id: str, *, origin: str
) -> tuple[UserAccount, ConsentGrant | None]:
    """``ensure_user``, and the user's live reusable grant (``find_live_reusable_grant``),
    in one statement: a create needs both, and a statement saved is a round trip saved."""
    params = {"new_id": uuid.uuid4(), "wanted": user_id, "now": datetime.now(UTC)}
    found = (await session.execute(_USER_UPSERT_WITH_LIVE_GRANT, params)).one_or_none()
    if found is None:  # inserted meanwhile by another transaction: see ensure_user
        user = await ensure_user(session, actor, user_id, origin=origin)
        return user, await find_live_reusable_grant(session, user_id)
    user, inserted, grant = found
    if inserted:
        await _audit_created(session, actor, user, origin)
    return user, grant


async def _audit_created(
    session: AsyncSession, actor: Actor, user: UserAccount, origin: str
) -> None:
    await record_event(
        session,
        origin=origin,
        actor=actor,
        target=user_target(user),
        action="CREATE",
        user_id=user.user_id,
    )


def _either_user() -> CompoundSelect[Any]:
    """The user inserted (``inserted`` true), or else the one already there (false)."""
    table = UserAccount.__table__
    fresh = (
        insert(UserAccount)
        .values(id=bindparam("new_id"), user_id=bindparam("wanted"))
        .on_conflict_do_nothing(index_elements=[UserAccount.user_id])
        .returning(*table.c)
        .cte("fresh")
    )
    return union_all(
        select(*fresh.c, true().label("inserted")),
        select(*table.c, false().label("inserted")).where(
            table.c.user_id == bindparam("wanted"), ~exists(select(fresh.c.id))
        ),
    )


def _with_live_grant() -> Executable:
    account = _either_user().subquery("account")
    user_rows = select(aliased(UserAccount, account), account.c.inserted)
    return with_live_reusable_grant(user_rows, bindparam("wanted"))


# Built once: composing them anew for every request cost more CPU than running them.
_USER_UPSERT = select(UserAccount, column("inserted", Boolean)).from_statement(_either_user())
_USER_UPSERT_WITH_LIVE_GRANT = _with_live_grant()


async def put_user(
    session: AsyncSession, actor: Actor, user_id: str, body: UserUpdate, *, origin: str
) -> UserAccount:
    """Create or update; each changed property is its own USER.UPDATE event."""
    user = await ensure_user(session, actor, user_id, origin=origin)
    changes = {
        "TAILSCALE_LOGIN": ("tailscale_login", body.tailscale_login),
        "DISPLAY_NAME": ("display_name", body.display_name),
    }
    for prop, (attribute, value) in changes.items():
        if attribute not in body.model_fields_set or getattr(user, attribute) == value:
            continue
        old = getattr(user, attribute)
        setattr(user, attribute, value)
        user.updated_at = datetime.now(UTC)
        await record_event(
            session,
            origin=origin,
            actor=actor,
            target=user_target(user, prop),
            action="UPDATE",
            old=old,
            new=value,
            user_id=user_id,
        )
    await session.flush()
    return user


async def user_with_grants(session: AsyncSession, user_id: str) -> UserOut:
    """The user and their grants' metadata, newest first; never a secret."""
    user = await find_user(session, user_id)
    if user is None:
        raise NotFound("No such user.")
    grants = await grants_of_user(session, user_id)
    return UserOut(
        user_id=user.user_id,
        tailscale_login=user.tailscale_login,
        display_name=user.display_name,
        created_at=user.created_at,
        updated_at=user.updated_at,
        grants=[GrantOut.model_validate(grant, from_attributes=True) for grant in grants],
    )
