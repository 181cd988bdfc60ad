"""`/api/v2/tailnet/{t}/devices` and `/api/v2/device/{id}`: reading, deleting, approving."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from sandbox.bearer import Caller, StateDep, TailnetDep, scoped
from sandbox.devices.approval import authorize_device
from sandbox.devices.listing import delete_device, device_json, find_device, list_devices
from sandbox.schemas import DeviceAuthorizationBody

router = APIRouter(prefix="/api/v2", tags=["devices"])
DeviceReader = Annotated[Caller, scoped("devices:core:read")]
DeviceAdmin = Annotated[Caller, scoped("devices:core")]
FieldsParam = Annotated[Literal["default", "all"], Query()]


@router.get("/tailnet/{tailnet}/devices")
async def list_tailnet_devices(
    caller: DeviceReader,
    tailnet: TailnetDep,
    state: StateDep,
    request: Request,
    fields: FieldsParam = "default",
) -> dict[str, Any]:
    """List devices; any other query parameter naming a top-level Device field filters."""
    filters = {
        name: request.query_params.getlist(name)
        for name in request.query_params
        if name != "fields"
    }
    return {"devices": list_devices(state, all_fields=fields == "all", filters=filters)}


@router.get("/device/{device_id}")
async def get_device(
    caller: DeviceReader, state: StateDep, device_id: str, fields: FieldsParam = "default"
) -> dict[str, Any]:
    """Return one device by nodeId or legacy id."""
    with state.lock:
        return device_json(find_device(state, device_id), all_fields=fields == "all")


@router.delete("/device/{device_id}")
async def remove_device(caller: DeviceAdmin, state: StateDep, device_id: str) -> Response:
    """Delete a device from the tailnet."""
    delete_device(state, device_id, actor=caller.actor)
    return Response(status_code=200)


@router.post("/device/{device_id}/authorized")
async def authorize(
    caller: DeviceAdmin, state: StateDep, device_id: str, body: DeviceAuthorizationBody
) -> Response:
    """Approve a device waiting for approval, or deauthorize one."""
    authorize_device(state, device_id, body.authorized, actor=caller.actor)
    return Response(status_code=200)
