"""Route names, the fault rule book and the request log, as the control API exposes them."""

import re
from dataclasses import asdict
from typing import Any

from sandbox.clock import rfc3339_precise
from sandbox.models import FaultRule, LoggedRequest
from sandbox.state import SandboxState

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


def _rule_matches(
    rule: FaultRule, route: str, path: str, method: str, grant_type: str | None
) -> bool:
    if not route_selected(rule.route, route, path):
        return False
    if rule.method is not None and rule.method != method:
        return False
    if rule.grant_type is not None and rule.grant_type != grant_type:
        return False
    return rule.fail_times is None or rule.fired < rule.fail_times


def take_fault(
    state: SandboxState, route: str, path: str, method: str, grant_type: str | None
) -> FaultRule | None:
    """Return the first live rule matching the request and count it as fired."""
    with state.lock:
        for rule in state.faults:
            if _rule_matches(rule, route, path, method, grant_type):
                rule.fired += 1
                return rule
    return None


def add_fault(state: SandboxState, fields: dict[str, Any]) -> FaultRule:
    """Append a fault rule; rules are tried in the order they were added."""
    with state.lock:
        rule = FaultRule(id=state.next_fault_id, **fields)
        state.next_fault_id += 1
        state.faults.append(rule)
        return rule


def fault_json(rule: FaultRule) -> dict[str, Any]:
    """Return a rule as the control API shows it."""
    return asdict(rule)


def log_request(
    state: SandboxState,
    *,
    method: str,
    path: str,
    route: str,
    grant_type: str | None,
    status: int | None,
    fault: FaultRule | None,
) -> None:
    """Append a request to the log."""
    with state.lock:
        state.requests.append(
            LoggedRequest(
                id=state.next_request_id,
                time=state.clock.now(),
                method=method,
                path=path,
                route=route,
                grant_type=grant_type,
                status=status,
                lost=status is None,
                fault_id=fault.id if fault else None,
            )
        )
        state.next_request_id += 1


def logged_requests(
    state: SandboxState, route: str | None, grant_type: str | None
) -> list[dict[str, Any]]:
    """Return the logged requests, oldest first, optionally narrowed by route and grant type."""
    with state.lock:
        entries = list(state.requests)
    return [
        {**asdict(entry), "time": rfc3339_precise(entry.time)}
        for entry in entries
        if (route is None or entry.route == route)
        and (grant_type is None or entry.grant_type == grant_type)
    ]
