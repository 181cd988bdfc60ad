"""`/api/v2/device/{id}/attributes`: a device's posture attributes."""

from typing import Annotated, Any

from fastapi import APIRouter, Response

from sandbox.bearer import Caller, StateDep, scoped
from sandbox.devices.attributes import attributes_json, delete_attribute, set_attribute
from sandbox.devices.listing import find_device
from sandbox.schemas import AttributeBody

router = APIRouter(prefix="/api/v2/device/{device_id}/attributes", tags=["devices"])
AttributeReader = Annotated[Caller, scoped("devices:posture_attributes:read")]
AttributeWriter = Annotated[Caller, scoped("devices:posture_attributes")]


@router.get("")
async def get_attributes(caller: AttributeReader, state: StateDep, device_id: str) -> Any:
    """Return every attribute of the device, built-in and custom, with expiries."""
    with state.lock:
        return attributes_json(state, find_device(state, device_id))


@router.post("/{attribute_key}")
async def post_attribute(
    caller: AttributeWriter,
    state: StateDep,
    device_id: str,
    attribute_key: str,
    body: AttributeBody,
) -> Any:
    """Create or update one custom attribute; answer every attribute of the device."""
    with state.lock:
        device = find_device(state, device_id)
        set_attribute(
            state,
            device,
            attribute_key,
            body.value,
            actor=caller.actor,
            expiry=body.expiry,
            comment=body.comment,
        )
        return attributes_json(state, device)


@router.delete("/{attribute_key}")
async def remove_attribute(
    caller: AttributeWriter, state: StateDep, device_id: str, attribute_key: str
) -> Response:
    """Delete one custom attribute."""
    with state.lock:
        delete_attribute(state, find_device(state, device_id), attribute_key, actor=caller.actor)
    return Response(status_code=200)
