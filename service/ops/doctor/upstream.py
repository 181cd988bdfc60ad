"""Checks on Tailscale as this deployment sees it: the login host, the API, the OAuth app,
the observer, and each identity source (the facts Tailscale's docs leave open)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from service.ops.doctor.report import Check, fail, ok, skip, warn
from service.settings import Settings

CONSOLE_LOGIN = "https://console.tailscale.com"
CLASSIC_LOGIN = "https://login.tailscale.com"
# What the observer needs for join detection and cross-links; and for the identity sources.
OBSERVER_NEEDS = ("devices:core:read", "logs:configuration:read")
IDENTITY_NEEDS = ("auth_keys:read", "users:read")


def holds(granted: set[str], needed: str) -> bool:
    """A scope grants itself, its ``:read`` form, and ``all`` grants everything."""
    return bool({needed, needed.removesuffix(":read"), "all"} & granted)


def _api(settings: Settings, path: str) -> str:
    return f"{settings.tailscale_api_url}/api/v2{path}"


def _tailnet(settings: Settings, path: str) -> str:
    return _api(settings, f"/tailnet/{settings.tailnet}{path}")


def _other_login(settings: Settings) -> str:
    return CLASSIC_LOGIN if settings.tailscale_login_url == CONSOLE_LOGIN else CONSOLE_LOGIN


async def check_login(http: httpx.AsyncClient, settings: Settings) -> Check:
    """The consent screen answers for this app and callback at the configured login host."""
    name, url = "tailscale login", f"{settings.tailscale_login_url}/a/oauth_authorize"
    params = {
        "client_id": settings.oauth_client_id,
        "redirect_uri": settings.redirect_uri,
        "response_type": "code",
        "scope": settings.oauth_scope,
        "state": "tsprov-doctor",
    }
    try:
        answer = await http.get(url, params=params)
    except httpx.HTTPError as exc:
        return fail(
            name,
            f"{url} unreachable ({type(exc).__name__})",
            "check TSPROV_TAILSCALE_LOGIN_URL and egress",
        )
    moved_to = urlsplit(answer.headers.get("location", "")).hostname
    login_host = urlsplit(settings.tailscale_login_url).hostname
    if answer.is_redirect and moved_to and moved_to != login_host:
        return warn(
            name,
            f"{url} redirects to {moved_to}",
            f"set TSPROV_TAILSCALE_LOGIN_URL=https://{moved_to}",
        )
    if answer.status_code == 404:
        return fail(
            name, f"{url} answers 404", f"try TSPROV_TAILSCALE_LOGIN_URL={_other_login(settings)}"
        )
    if answer.status_code >= 400:
        return fail(
            name,
            f"{url} refuses this client id or redirect URI (HTTP {answer.status_code})",
            "register the app (`tsprov app register`) or fix TSPROV_OAUTH_CLIENT_ID and PUBLIC_URL",
        )
    return ok(name, f"{url} answers for this app (HTTP {answer.status_code})")


async def check_api(http: httpx.AsyncClient, settings: Settings) -> Check:
    """The API host answers; without a token it must say 401."""
    url = _tailnet(settings, "/devices")
    try:
        answer = await http.get(url)
    except httpx.HTTPError as exc:
        return fail(
            "tailscale api",
            f"unreachable ({type(exc).__name__})",
            "check TSPROV_TAILSCALE_API_URL and egress",
        )
    if answer.status_code != 401:
        return warn(
            "tailscale api",
            f"answered {answer.status_code} without a token, not 401",
            "check TSPROV_TAILSCALE_API_URL points at the API",
        )
    return ok("tailscale api", f"{settings.tailscale_api_url} answers")


async def check_app(http: httpx.AsyncClient, settings: Settings, admin_token: str | None) -> Check:
    """The OAuth app Tailscale holds has tsprov's callback and scope."""
    name = "oauth app"
    if admin_token is None:
        return skip(name, "not compared", "set TSPROV_TAILSCALE_ADMIN_TOKEN(_FILE) to compare it")
    url = _tailnet(settings, f"/oauth-apps/{settings.oauth_client_id}")
    answer = await http.get(url, headers={"Authorization": f"Bearer {admin_token}"})
    if answer.status_code == 404:
        return fail(
            name, f"no app {settings.oauth_client_id}", "`tsprov app register`, then set its id"
        )
    if answer.status_code != 200:
        return fail(
            name,
            f"admin token refused (HTTP {answer.status_code})",
            "use a token with oauth_apps:read",
        )
    app: dict[str, Any] = answer.json()
    problems = []
    if settings.redirect_uri not in app.get("redirectURIs", []):
        problems.append(f"redirect URIs {app.get('redirectURIs')} lack {settings.redirect_uri}")
    missing = [s for s in settings.oauth_scope.split() if s not in app.get("scopes", [])]
    if missing:
        problems.append(f"scopes {app.get('scopes')} lack {' '.join(missing)}")
    if problems:
        return fail(
            name, "; ".join(problems), "update the app in the admin console, or register a new one"
        )
    return ok(name, f"{app.get('name')}: redirect URI and scope {settings.oauth_scope} match")


async def observer_token(
    http: httpx.AsyncClient, settings: Settings
) -> tuple[Check, str | None, set[str]]:
    """The observer's token and scopes, and a check that it works."""
    name = "observer"
    if not settings.observer_client_id:
        return skip(name, "none configured"), None, set()
    form = {
        "grant_type": "client_credentials",
        "client_id": settings.observer_client_id,
        "client_secret": settings.observer_client_secret.get_secret_value(),
    }
    answer = await http.post(_api(settings, "/oauth/token"), data=form)
    if answer.status_code != 200:
        return (
            fail(
                name,
                f"token refused (HTTP {answer.status_code})",
                "check TSPROV_OBSERVER_CLIENT_ID and _SECRET",
            ),
            None,
            set(),
        )
    body = answer.json()
    granted = set(str(body.get("scope", "")).split())
    token = str(body["access_token"])
    missing = [s for s in OBSERVER_NEEDS if not holds(granted, s)]
    if missing:
        return (
            fail(name, f"token lacks {' '.join(missing)}", "add them to the OAuth client's scopes"),
            token,
            granted,
        )
    devices = await http.get(
        _tailnet(settings, "/devices"), headers={"Authorization": f"Bearer {token}"}
    )
    if devices.status_code != 200:
        return (
            fail(
                name,
                f"device list refused (HTTP {devices.status_code})",
                "give the client devices:core:read",
            ),
            token,
            granted,
        )
    lacking = [s for s in IDENTITY_NEEDS if not holds(granted, s)]
    if lacking:
        found = f"works; lacks {' '.join(lacking)} (the key-owner identity source needs them)"
        return warn(name, found, "add them to the OAuth client's scopes"), token, granted
    return ok(name, f"works with {' '.join(sorted(granted))}"), token, granted
