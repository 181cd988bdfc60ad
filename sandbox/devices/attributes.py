"""Node (posture) attributes: the built-in `node:` ones and the `custom:` ones callers set."""

import re
from datetime import datetime
from typing import Any

from sandbox.audit.log import Target, app_actor, record_event
from sandbox.clock import rfc3339
from sandbox.errors import ApiError
from sandbox.models import Actor, AuthKey, Device
from sandbox.state import SandboxState

ATTRIBUTE_KEY = re.compile(r"^custom:[A-Za-z0-9_:]{1,121}$")
_STRING_VALUE = re.compile(r"^[A-Za-z0-9_.]{0,50}$")
_LARGEST_SAFE_INTEGER = 2**53 - 1
AttributeValue = str | int | bool


def check_attribute_key(key: str) -> None:
    """Refuse a key outside the custom namespace or Tailscale's charset and length."""
    if not ATTRIBUTE_KEY.match(key):
        raise ApiError(
            400, f"invalid attribute key {key!r}: custom: and up to 128 of [A-Za-z0-9_:]"
        )


def _checked_value(value: Any) -> AttributeValue:
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and abs(value) <= _LARGEST_SAFE_INTEGER:
        return value
    if isinstance(value, str) and _STRING_VALUE.match(value):
        return value
    raise ApiError(400, "value must be a boolean, a safe integer, or 50 of [A-Za-z0-9_.]")


def _check_consistent(state: SandboxState, key: str, value: AttributeValue) -> None:
    # Keys are unique without regard to case, and one key holds one type across the tailnet.
    for device in state.devices.values():
        for existing, held in device.attributes.items():
            if existing.casefold() != key.casefold():
                continue
            if existing != key:
                raise ApiError(400, f"attribute key {key!r} collides with {existing!r}")
            if type(held) is not type(value):
                raise ApiError(400, f"attribute {key!r} already holds {type(held).__name__} values")


def _attribute_event(
    state: SandboxState, device: Device, actor: Actor, action: str, change: dict[str, Any]
) -> None:
    target = Target("NODE", device.node_id, device.name, property="ATTRIBUTES")
    record_event(state, actor=actor, target=target, action=action, origin="CONTROL", **change)


def set_attribute(
    state: SandboxState,
    device: Device,
    key: str,
    raw_value: Any,
    *,
    actor: Actor,
    expiry: datetime | None = None,
    comment: str = "",
) -> None:
    """Create or update a custom attribute; logs NODE.CREATE/UPDATE.ATTRIBUTES. Holds the lock."""
    check_attribute_key(key)
    value = _checked_value(raw_value)
    _check_consistent(state, key, value)
    old = device.attributes.get(key)
    device.attributes[key] = value
    device.attribute_expiries.pop(key, None)
    if expiry is not None:
        device.attribute_expiries[key] = expiry
    action = "CREATE" if old is None else "UPDATE"
    change = {"old": None if old is None else {key: old}, "new": {key: value}, "details": comment}
    _attribute_event(state, device, actor, action, change)


def delete_attribute(state: SandboxState, device: Device, key: str, *, actor: Actor) -> None:
    """Remove a custom attribute; removing one that is not set changes nothing [?]."""
    check_attribute_key(key)
    if key not in device.attributes:
        return
    old = device.attributes.pop(key)
    device.attribute_expiries.pop(key, None)
    _attribute_event(state, device, actor, "DELETE", {"old": {key: old}})


def _drop_expired(state: SandboxState, device: Device) -> None:
    now = state.clock.now()
    for key in [key for key, when in device.attribute_expiries.items() if when <= now]:
        device.attributes.pop(key, None)
        del device.attribute_expiries[key]


def attributes_json(state: SandboxState, device: Device) -> dict[str, Any]:
    """Return the DevicePostureAttributes object: built-in and custom attributes, expiries."""
    _drop_expired(state, device)
    built_in: dict[str, Any] = {
        "node:os": device.os,
        "node:tsVersion": device.client_version.split("-", 1)[0],
        "node:tsReleaseTrack": "stable",
        "node:tsAutoUpdate": False,
        "node:tsStateEncrypted": False,
    }
    expiries = {key: rfc3339(when) for key, when in device.attribute_expiries.items()}
    return {"attributes": {**built_in, **device.attributes}, "expiries": expiries}


def apply_app_attributes(state: SandboxState, device: Device, key: AuthKey) -> None:
    """Set the app's allowedNodeAttributes (to `true`) on a device its consent enrolled [?]."""
    app = state.apps.get(key.app_id) if key.app_id else None
    if app is None or state.switches.app_node_attributes != "at_enrolment":
        return
    for name in app.allowed_node_attributes:
        try:
            set_attribute(state, device, name, True, actor=app_actor(app))
        except ApiError:
            # A key the tailnet already holds with another type or case stays unset.
            continue
