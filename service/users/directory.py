"""Users as operators browse them: a page in user-id order, each with its grants and
devices counted."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from service.grants.status import GrantStatus
from service.grants.store import grant_counts
from service.models import UserAccount
from service.provisioning.store import device_counts
from service.users.store import page_of_users


@dataclass(frozen=True)
class UserEntry:
    user: UserAccount
    grants: dict[GrantStatus, int]
    devices: int


@dataclass(frozen=True)
class UserPage:
    entries: list[UserEntry]
    next_cursor: str | None  # the last user id shown: the keyset is the unique user id


async def users_page(session: AsyncSession, after: str | None, limit: int) -> UserPage:
    """Three indexed queries whatever the page: the users, their grants, their devices."""
    rows = await page_of_users(session, after, limit)
    page = rows[:limit]
    user_ids = [user.user_id for user in page]
    grants = await grant_counts(session, user_ids) if user_ids else {}
    devices = await device_counts(session, user_ids) if user_ids else {}
    entries = [UserEntry(user, grants[user.user_id], devices[user.user_id]) for user in page]
    return UserPage(entries, page[-1].user_id if len(rows) > limit else None)
