"""What tsprov holds under a tailnet login: the users it stands for, their pending requests,
grants and devices — read through the domains' own functions.

Which users are a login's: a user whose *expected* login is it — set explicitly by an
admin caller (``PUT /v1/users/{id}``), or, when none was set, derived from LOGIN_TEMPLATE.
That is the same rule that decides whose consent tsprov accepts for the user, so /me shows
exactly what that person could have approved. A user whose expected login was set to
someone else is never theirs, even when the template would say so. Besides, a grant whose
consenting login Tailscale confirmed as theirs is theirs (it is their identity that grant
uses), whoever it was for. Nothing else is matched: not the hostname, not the display name.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from string import Formatter

from sqlalchemy.ext.asyncio import AsyncSession

from service.console.errors import ConsolePageError
from service.grants.store import grants_of_user, grants_verified_as, load_grant
from service.models import ConsentGrant, ProvisioningRequest
from service.provisioning.status import RequestStatus
from service.provisioning.store import load_request, page_for_user, provisioned_devices
from service.settings import Settings
from service.users.store import find_user, users_expecting
from service.web.errors import NotFound
from service.web.fields import USER_ID_PATTERN

# Each list shows the newest this many; a person rarely has more, and the page stays fast.
SHOWN = 50

_USER_ID = re.compile(USER_ID_PATTERN)


@dataclass(frozen=True)
class Owner:
    """A signed-in login and the users that are theirs."""

    login: str
    user_ids: tuple[str, ...]

    def has_user(self, user_id: str) -> bool:
        return user_id in self.user_ids

    def has_grant(self, grant: ConsentGrant) -> bool:
        verified = (grant.login_name or "").casefold() == self.login.casefold()
        return self.has_user(grant.user_id) or verified


@dataclass
class Holdings:
    """What /me lists."""

    owner: Owner
    pending: list[ProvisioningRequest] = field(default_factory=list)
    grants: list[ConsentGrant] = field(default_factory=list)
    devices: list[ProvisioningRequest] = field(default_factory=list)


def user_id_from_template(settings: Settings, login: str) -> str | None:
    """The user whose LOGIN_TEMPLATE-derived login is ``login``, if the template allows one."""
    if not settings.login_template:
        return None
    parts = [(text, name) for text, name, _, _ in Formatter().parse(settings.login_template)]
    prefix = parts[0][0]
    suffix = "".join(text for text, _ in parts[1:])
    folded = login.casefold()
    if not (folded.startswith(prefix.casefold()) and folded.endswith(suffix.casefold())):
        return None
    candidate = login[len(prefix) : len(login) - len(suffix)]
    if not candidate or not _USER_ID.match(candidate):
        return None
    derived = settings.expected_login(candidate, None) or ""
    return candidate if derived.casefold() == folded else None


async def owner_of_login(session: AsyncSession, settings: Settings, login: str) -> Owner:
    """The users ``login`` stands for (see the module's docstring)."""
    user_ids = [user.user_id for user in await users_expecting(session, login, SHOWN)]
    derived = user_id_from_template(settings, login)
    if derived is not None and derived not in user_ids:
        user = await find_user(session, derived)
        # An explicit login wins over the template: then the user is someone else's.
        if user is None or not user.tailscale_login:
            user_ids.append(derived)
    return Owner(login=login, user_ids=tuple(user_ids))


async def holdings_of(session: AsyncSession, owner: Owner) -> Holdings:
    """The owner's pending requests, grants and devices, newest first."""
    held = Holdings(owner)
    grants: dict[uuid.UUID, ConsentGrant] = {}
    for user_id in owner.user_ids:
        waiting = await page_for_user(
            session, user_id, RequestStatus.AWAITING_CONSENT, SHOWN - 1, None
        )
        held.pending.extend(waiting)
        grants.update({grant.id: grant for grant in await grants_of_user(session, user_id, SHOWN)})
        held.devices.extend(await provisioned_devices(session, user_id, SHOWN))
    for grant in await grants_verified_as(session, owner.login, SHOWN):
        grants[grant.id] = grant
    held.pending.sort(key=lambda request: request.created_at, reverse=True)
    held.grants = sorted(grants.values(), key=lambda grant: grant.created_at, reverse=True)
    return held


async def owned_request(
    session: AsyncSession, owner: Owner, request_id: uuid.UUID
) -> ProvisioningRequest:
    """The request, if it is for one of the owner's users; else the same "not found" page
    as for a request that does not exist, so nobody learns what others hold."""
    try:
        request = await load_request(session, request_id)
    except NotFound:
        request = None
    if request is None or not owner.has_user(request.user_id):
        raise _not_yours("request")
    return request


async def owned_grant(session: AsyncSession, owner: Owner, grant_id: uuid.UUID) -> ConsentGrant:
    """The grant, if it is the owner's; else "not found"."""
    grant = await load_grant(session, grant_id)
    if grant is None or not owner.has_grant(grant):
        raise _not_yours("grant")
    return grant


async def owned_device(session: AsyncSession, owner: Owner, node_id: str) -> ProvisioningRequest:
    """The request whose device is ``node_id``, if it is one of the owner's; else "not found"."""
    for user_id in owner.user_ids:
        for request in await provisioned_devices(session, user_id):
            if request.device_node_id == node_id:
                return request
    raise _not_yours("device")


def _not_yours(thing: str) -> ConsolePageError:
    return ConsolePageError(
        404,
        f"No such {thing}",
        f"tsprov holds no {thing} like this under your login. It may belong to someone else, "
        "or never have existed.",
    )
