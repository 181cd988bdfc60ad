"""Names of the Tailscale-facing routes, by which fault rules and the latency switch select."""

import re

ROUTE_NAMES = frozenset(
    {
        "authorize",
        "token",
        "keys",
        "devices",
        "device",
        "logging",
        "oauth_apps",
        "users",
        "settings",
        "join",
        "api",
    }
)
_TAILNET_ROUTE = re.compile(
    r"^/api/v2/tailnet/[^/]+/(keys|devices|logging|oauth-apps|users|settings)(/|$)"
)


def route_name(path: str) -> str | None:
    """Name the Tailscale-facing route a path belongs to; None for the control API and docs."""
    if path == "/a/oauth_authorize":
        return "authorize"
    if path == "/api/v2/oauth/token":
        return "token"
    if path == "/sandbox/join":
        return "join"
    if path.startswith("/api/v2/device/"):
        return "device"
    if path.startswith("/api/v2/users/"):
        return "users"
    match = _TAILNET_ROUTE.match(path)
    if match:
        return match[1].replace("-", "_")
    return "api" if path.startswith("/api/") else None


def route_selected(selector: str, route: str, path: str) -> bool:
    """True when a rule's route selector (a route name or a path prefix) covers a request."""
    if selector.startswith("/"):
        return path.startswith(selector)
    return selector == route


def check_route_selector(value: str) -> str:
    """Accept a route name or a path prefix; raise ValueError for anything else."""
    if not value.startswith("/") and value not in ROUTE_NAMES:
        raise ValueError(f"route must start with '/' or be one of {sorted(ROUTE_NAMES)}")
    return value
