"""Reading the log: the `actor`, `target` and `event` filters as Tailscale documents them."""

from datetime import datetime
from typing import Any

from sandbox.audit.log import event_json
from sandbox.audit.names import accepted_event_names
from sandbox.errors import ApiError
from sandbox.models import AuditEvent
from sandbox.state import SandboxState


def _actor_matches(event: AuditEvent, wanted: str) -> bool:
    actor = event.actor
    if wanted.startswith("~"):
        # A wildcard search on login or display name; case does not matter to a search.
        text = wanted[1:].casefold()
        return text in actor["loginName"].casefold() or text in actor["displayName"].casefold()
    return bool(actor["id"]) and actor["id"] == wanted


def _target_matches(event: AuditEvent, wanted: str) -> bool:
    return any(wanted in str(event.target[part]) for part in ("id", "name"))


def _matches(event: AuditEvent, actors: list[str], targets: list[str], names: list[str]) -> bool:
    if actors and not any(_actor_matches(event, wanted) for wanted in actors):
        return False
    if targets and not any(_target_matches(event, wanted) for wanted in targets):
        return False
    return not names or event.name in names


def check_event_names(state: SandboxState, names: list[str]) -> None:
    """Refuse a name outside the closed list with 400, as Tailscale does."""
    accepted = accepted_event_names(state.switches.oauth_app_events)
    unknown = [name for name in names if name not in accepted]
    if unknown:
        raise ApiError(400, f"invalid event filter: {', '.join(unknown)}")


def query_events(
    state: SandboxState,
    start: datetime,
    end: datetime,
    *,
    actors: list[str],
    targets: list[str],
    events: list[str],
) -> list[dict[str, Any]]:
    """Return the events in [start, end] that pass every filter kind, in time order."""
    with state.lock:
        check_event_names(state, events)
        chosen = [
            event
            for event in state.events
            if start <= event.event_time <= end and _matches(event, actors, targets, events)
        ]
    chosen.sort(key=lambda event: event.event_time)
    return [event_json(event) for event in chosen]
