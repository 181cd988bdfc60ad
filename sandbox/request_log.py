"""The fault rule book and the request log, as the control API exposes them."""

from dataclasses import asdict
from typing import Any

from sandbox.clock import rfc3339_precise
from sandbox.models import FaultRule, LoggedRequest
from sandbox.route_names import route_selected
from sandbox.state import SandboxState


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
