"""`/api/v2/tailnet/{t}/logging/configuration`: the configuration audit log."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from sandbox.audit.query import query_events
from sandbox.bearer import Caller, StateDep, TailnetDep, scoped
from sandbox.clock import parse_rfc3339
from sandbox.errors import ApiError

router = APIRouter(prefix="/api/v2/tailnet/{tailnet}/logging", tags=["logging"])
LogReader = Annotated[Caller, scoped("logs:configuration:read")]
Repeated = Annotated[list[str], Query(default_factory=list)]


def _bound(name: str, value: str | None) -> datetime:
    if not value:
        raise ApiError(400, f"{name} is required")
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise ApiError(400, f"{name} must be an RFC 3339 timestamp") from None


@router.get("/configuration")
async def configuration_log(
    caller: LogReader,
    tailnet: TailnetDep,
    state: StateDep,
    actor: Repeated,
    target: Repeated,
    event: Repeated,
    start: str | None = None,
    end: str | None = None,
) -> dict[str, Any]:
    """Return the events between `start` and `end` that match the filters, in time order."""
    since, until = _bound("start", start), _bound("end", end)
    if since > until:
        raise ApiError(400, "start must not be after end")
    logs = query_events(state, since, until, actors=actor, targets=target, events=event)
    return {"version": "1.1", "tailnet": state.settings.tailnet, "logs": logs}
