"""`/sandbox/*`: the sandbox's own control API (switches, faults, request log, clock, join)."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from sandbox.bearer import StateDep
from sandbox.clock import rfc3339_precise
from sandbox.control import (
    ClockAdvanceBody,
    ConnectionBody,
    FaultRuleBody,
    SwitchesBody,
    apply_switches,
)
from sandbox.devices.enrolment import join_with_key
from sandbox.devices.listing import device_json, set_connected
from sandbox.request_log import add_fault, fault_json, logged_requests
from sandbox.schemas import JoinBody

router = APIRouter(prefix="/sandbox", tags=["sandbox control"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Answer 200 once the sandbox serves."""
    return {"status": "ok"}


@router.get("/switches")
async def get_switches(state: StateDep) -> SwitchesBody:
    """Show every switch."""
    with state.lock:
        return SwitchesBody(**state.switches.as_json())


@router.patch("/switches")
async def patch_switches(state: StateDep, patch: SwitchesBody) -> SwitchesBody:
    """Change the switches named in the body; answer them all."""
    apply_switches(state, patch)
    with state.lock:
        return SwitchesBody(**state.switches.as_json())


@router.get("/faults")
async def list_faults(state: StateDep) -> dict[str, list[dict[str, Any]]]:
    """Show the fault rules with how often each has fired."""
    with state.lock:
        return {"faults": [fault_json(rule) for rule in state.faults]}


@router.post("/faults", status_code=201)
async def create_fault(state: StateDep, rule: FaultRuleBody) -> dict[str, Any]:
    """Add a fault rule; the first live rule matching a request applies to it."""
    return fault_json(add_fault(state, rule.model_dump()))


@router.delete("/faults", status_code=204)
async def clear_faults(state: StateDep) -> Response:
    """Remove every fault rule."""
    with state.lock:
        state.faults.clear()
    return Response(status_code=204)


@router.get("/requests")
async def get_requests(
    state: StateDep,
    route: Annotated[str | None, Query()] = None,
    grant_type: Annotated[str | None, Query()] = None,
) -> dict[str, list[dict[str, Any]]]:
    """Show the request log (method, path, route, grant type, status, time), oldest first."""
    return {"requests": logged_requests(state, route, grant_type)}


@router.delete("/requests", status_code=204)
async def clear_requests(state: StateDep) -> Response:
    """Empty the request log."""
    with state.lock:
        state.requests.clear()
    return Response(status_code=204)


@router.post("/reset", status_code=204)
async def reset(state: StateDep) -> Response:
    """Return to the seeded tailnet and start-up switches; drop faults, log and clock offset."""
    state.reset()
    return Response(status_code=204)


@router.get("/clock")
async def get_clock(state: StateDep) -> dict[str, str]:
    """Show the sandbox's current time."""
    return {"now": rfc3339_precise(state.clock.now())}


@router.post("/clock")
async def advance_clock(state: StateDep, body: ClockAdvanceBody) -> dict[str, str]:
    """Move the sandbox's clock forward, ageing codes, keys and tokens."""
    with state.lock:
        state.clock.advance(body.advance_seconds)
        return {"now": rfc3339_precise(state.clock.now())}


@router.post("/join")
async def join(state: StateDep, body: JoinBody) -> dict[str, Any]:
    """Do what `tailscale up --auth-key` does and answer the new Device (all fields)."""
    device = join_with_key(state, body.authKey, body.hostname, body.os)
    with state.lock:
        return device_json(device, all_fields=True)


@router.post("/devices/{device_id}/connection")
async def device_connection(
    state: StateDep, device_id: str, body: ConnectionBody
) -> dict[str, Any]:
    """Take a device off line (it gains `lastSeen`) or back on; answer the Device."""
    device = set_connected(state, device_id, body.connected)
    with state.lock:
        return device_json(device, all_fields=True)
