"""Which identity sources answer in this tailnet, tried on the newest key made under a
consent: the key's owner (readable by the observer? ``userId`` set?) and the configuration
log's record of its creation. Against real Tailscale this is how an operator learns which of
the documented unknowns hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.events import format_time
from service.audit.query import build_filter, query_audit
from service.ops.doctor.report import Check, fail, ok, skip, warn
from service.ops.doctor.upstream import holds
from service.settings import Settings

LOOKBACK = timedelta(days=90)
GRANT_SCOPE_FIX = "give the observer auth_keys:read and users:read"


@dataclass(frozen=True)
class ConsentKey:
    key_id: str
    created_at: datetime


async def newest_consent_key(sessions: async_sessionmaker[AsyncSession]) -> ConsentKey | None:
    """The newest key tsprov recorded getting or minting under a consent."""
    now = datetime.now(UTC)
    audit_filter = build_filter(
        format_time(now - LOOKBACK), format_time(now), events=["API_KEY.CREATE"]
    )
    newest, cursor = None, None
    async with sessions() as session:
        while True:
            page = await query_audit(session, audit_filter, limit=500, cursor=cursor)
            keyed = [event for event in page.logs if event["target"]["id"]]
            newest = keyed[-1] if keyed else newest
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    if newest is None:
        return None
    created = datetime.fromisoformat(newest["eventTime"].replace("Z", "+00:00"))
    return ConsentKey(newest["target"]["id"], created)


async def check_key_owner(
    http: httpx.AsyncClient, settings: Settings, token: str, granted: set[str], key: ConsentKey
) -> Check:
    """Source: ``GET keys/{id}`` → ``userId`` → ``GET users/{id}`` → ``loginName``."""
    name = "identity: key owner"
    if not holds(granted, "auth_keys:read"):
        return skip(name, "observer lacks auth_keys:read", GRANT_SCOPE_FIX)
    auth = {"Authorization": f"Bearer {token}"}
    base = f"{settings.tailscale_api_url}/api/v2"
    answer = await http.get(f"{base}/tailnet/{settings.tailnet}/keys/{key.key_id}", headers=auth)
    if answer.status_code != 200:
        return warn(
            name,
            f"the observer cannot read a user's key (HTTP {answer.status_code})",
            "rely on the configuration log or the joined device",
        )
    user_id = str(answer.json().get("userId") or "")
    if not user_id:
        return warn(
            name,
            "keys readable, but userId is empty for consent keys",
            "rely on the configuration log or the joined device",
        )
    if not holds(granted, "users:read"):
        return warn(name, f"keys readable, userId {user_id}; users not readable", GRANT_SCOPE_FIX)
    user = await http.get(f"{base}/users/{user_id}", headers=auth)
    if user.status_code != 200:
        return fail(
            name,
            f"userId {user_id} present, user unreadable (HTTP {user.status_code})",
            GRANT_SCOPE_FIX,
        )
    return ok(name, f"keys readable, userId present ({user.json().get('loginName')})")


async def check_configuration_log(
    http: httpx.AsyncClient, settings: Settings, token: str, granted: set[str], key: ConsentKey
) -> Check:
    """Source: the configuration log's ``API_KEY.CREATE`` for that key names its creator."""
    name = "identity: configuration log"
    if not holds(granted, "logs:configuration:read"):
        return skip(name, "observer lacks logs:configuration:read", "add it to the observer")
    params = {
        "start": format_time(key.created_at - timedelta(hours=1)),
        "end": format_time(datetime.now(UTC)),
        "event": "API_KEY.CREATE",
        "target": key.key_id,
    }
    answer = await http.get(
        f"{settings.tailscale_api_url}/api/v2/tailnet/{settings.tailnet}/logging/configuration",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
    )
    if answer.status_code != 200:
        return fail(
            name,
            f"unreadable (HTTP {answer.status_code})",
            "give the observer logs:configuration:read",
        )
    created = [
        log
        for log in answer.json().get("logs", [])
        if log.get("target", {}).get("id") == key.key_id
    ]
    if not created:
        return warn(
            name,
            "readable; consent keys are not logged",
            "rely on the key owner or the joined device",
        )
    actor = created[-1].get("actor", {})
    if actor.get("type") != "USER" or not actor.get("loginName"):
        return warn(
            name,
            f"readable; a consent key's creator is {actor.get('type')}, not the user",
            "rely on the key owner or the joined device",
        )
    return ok(name, f"readable; names the consenting user ({actor['loginName']})")


async def check_identity_sources(
    http: httpx.AsyncClient,
    settings: Settings,
    token: str | None,
    granted: set[str],
    sessions: async_sessionmaker[AsyncSession] | None,
) -> list[Check]:
    name = "identity sources"
    if token is None:
        return [skip(name, "need a working observer")]
    if sessions is None:
        return [skip(name, "need the database, to find a consent key")]
    key = await newest_consent_key(sessions)
    if key is None:
        return [
            skip(
                name,
                "no consent yet to test against",
                "complete one consent, then run doctor again",
            )
        ]
    return [
        await check_key_owner(http, settings, token, granted, key),
        await check_configuration_log(http, settings, token, granted, key),
    ]
