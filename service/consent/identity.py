"""Who consented: the identity sources, tried in order until one names the login.

1. the token response's login field (``TSPROV_TOKEN_LOGIN_FIELD``), when Tailscale sends one;
2. the key's owner: ``GET keys/{id}`` → ``userId`` → ``GET users/{userId}`` → ``loginName``
   (the observer, scopes ``auth_keys:read`` and ``users:read``);
3. the configuration log: the key's ``API_KEY.CREATE`` event → ``actor.loginName`` (the
   observer, scope ``logs:configuration:read``).

Each source answers a login, or None with the reason it could not tell; a source never
raises for an upstream failure, as "could not tell" is an answer the policy decides on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from service.settings import Settings
from service.tailscale.client import TailscaleClient, TailscaleError, UpstreamRefused

# The key was made moments ago (the code exchange, or the mint); the window allows for
# clock skew between tsprov and Tailscale.
LOG_LOOKBACK = timedelta(minutes=15)
LOG_LOOKAHEAD = timedelta(minutes=2)
OBSERVER_SCOPES_HINT = (
    "give the observer OAuth client (TSPROV_OBSERVER_CLIENT_ID) the scopes auth_keys:read and "
    "users:read, or logs:configuration:read"
)


@dataclass(frozen=True)
class Finding:
    source: str
    login: str | None
    reason: str = ""


@dataclass(frozen=True)
class ConsentingIdentity:
    """The first login a source named, and why each source tried before it could not tell."""

    login: str | None
    source: str = ""
    unknown: list[Finding] = field(default_factory=list)

    def reasons(self) -> str:
        return "; ".join(f"{finding.source}: {finding.reason}" for finding in self.unknown)


class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    MISMATCH = "mismatch"
    UNVERIFIED = "unverified"


def verdict(expected: str | None, identity: ConsentingIdentity) -> Verdict:
    if identity.login is None or expected is None:
        return Verdict.UNVERIFIED
    if identity.login.lower() == expected.lower():
        return Verdict.CONFIRMED
    return Verdict.MISMATCH


def from_token_response(settings: Settings, login: str | None) -> Finding:
    source = "token response"
    if not settings.token_login_field:
        return Finding(source, None, "TSPROV_TOKEN_LOGIN_FIELD is not set")
    if not login:
        return Finding(source, None, f"no {settings.token_login_field!r} in the answer")
    return Finding(source, login)


async def from_key_owner(client: TailscaleClient, key_id: str, user_id: str = "") -> Finding:
    """``user_id`` is the key's ``userId`` when already known (a mint's answer carries it)."""
    source = "key owner"
    if not client.has_observer:
        return Finding(source, None, "no observer credential (TSPROV_OBSERVER_CLIENT_ID)")
    if not user_id:
        try:
            owner = await client.key_owner(key_id)
        except TailscaleError as exc:
            return Finding(source, None, _refusal("reading the key", exc, "auth_keys:read"))
        if owner is None:
            return Finding(source, None, "the observer cannot see the user's key (404)")
        if not owner.user_id:
            return Finding(source, None, "the key names no user (empty userId)")
        user_id = owner.user_id
    try:
        login = await client.user_login(user_id)
    except TailscaleError as exc:
        return Finding(source, None, _refusal("reading the user", exc, "users:read"))
    if login is None:
        return Finding(source, None, "the key's user is unknown to Tailscale (404)")
    return Finding(source, login)


async def from_configuration_log(client: TailscaleClient, key_id: str) -> Finding:
    source = "configuration log"
    if not client.has_observer:
        return Finding(source, None, "no observer credential (TSPROV_OBSERVER_CLIENT_ID)")
    now = datetime.now(UTC)
    try:
        events = await client.configuration_log(
            start=now - LOG_LOOKBACK, end=now + LOG_LOOKAHEAD, events=["API_KEY.CREATE"]
        )
    except TailscaleError as exc:
        return Finding(source, None, _refusal("reading the log", exc, "logs:configuration:read"))
    for event in events:
        target = event.get("target")
        if isinstance(target, dict) and target.get("id") == key_id:
            login = _person(event.get("actor"))
            if login is None:
                return Finding(source, None, "its API_KEY.CREATE names no person as the actor")
            return Finding(source, login)
    return Finding(source, None, "no API_KEY.CREATE event for the key")


def _person(actor: object) -> str | None:
    """A user actor's login; an app, a client or a worker as the actor names nobody."""
    if not isinstance(actor, dict) or actor.get("type") != "USER":
        return None
    login = actor.get("loginName")
    return login if isinstance(login, str) and login else None


def _refusal(doing: str, exc: TailscaleError, scope: str) -> str:
    if isinstance(exc, UpstreamRefused) and exc.status in (401, 403):
        return f"{doing} was refused ({exc.status}); the observer needs {scope}"
    return f"{doing} failed ({exc.code})"


async def consenting_identity(
    settings: Settings,
    client: TailscaleClient,
    *,
    token_login: str | None,
    key_id: str,
    key_user_id: str = "",
) -> ConsentingIdentity:
    """Ask each source in turn; the key sources only when the key's id is known."""
    unknown: list[Finding] = []
    finding = from_token_response(settings, token_login)
    if finding.login:
        return ConsentingIdentity(finding.login, finding.source)
    unknown.append(finding)
    if not key_id:
        unknown.append(Finding("key", None, "no key yet: it is checked when the first is minted"))
        return ConsentingIdentity(None, unknown=unknown)
    finding = await from_key_owner(client, key_id, key_user_id)
    if not finding.login:
        unknown.append(finding)
        finding = await from_configuration_log(client, key_id)
    if finding.login:
        return ConsentingIdentity(finding.login, finding.source, unknown)
    unknown.append(finding)
    return ConsentingIdentity(None, unknown=unknown)


def unverified_detail(reasons: str = "") -> str:
    """The problem detail for identity_unverified: why, and what would let tsprov confirm."""
    why = f" ({reasons})" if reasons else ""
    return (
        f"tsprov could not confirm which Tailscale login consented{why}, so no key was handed "
        f"out. To let it confirm, {OBSERVER_SCOPES_HINT}; where Tailscale offers no source, "
        "set TSPROV_IDENTITY_BINDING=after_join."
    )
