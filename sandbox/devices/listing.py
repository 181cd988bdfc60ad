"""The Device object, its `fields` and filters, lookups, deletion and the connection state."""

from typing import Any

from sandbox.audit.log import Target, record_event
from sandbox.clock import rfc3339
from sandbox.errors import ApiError
from sandbox.models import Actor, Device
from sandbox.state import SandboxState

ALL_ONLY_FIELDS = (
    "enabledRoutes",
    "advertisedRoutes",
    "clientConnectivity",
    "postureIdentity",
    "sshEnabled",
)


def find_device(state: SandboxState, device_id: str) -> Device:
    """Return a device by nodeId or legacy id, or raise 404. Caller holds the lock."""
    device = state.devices.get(device_id) or next(
        (d for d in state.devices.values() if d.id == device_id), None
    )
    if device is None:
        raise ApiError(404, "device not found")
    return device


def node_target(device: Device) -> Target:
    """Return what an event about this device names."""
    return Target("NODE", device.node_id, device.name, is_ephemeral=device.is_ephemeral)


def delete_device(state: SandboxState, device_id: str, *, actor: Actor) -> None:
    """Remove a device from the tailnet and log NODE.DELETE. Takes the lock."""
    with state.lock:
        device = find_device(state, device_id)
        del state.devices[device.node_id]
        old = {"user": device.user_login, "tags": device.tags}
        record_event(state, actor=actor, target=node_target(device), action="DELETE", old=old)


def set_connected(state: SandboxState, device_id: str, connected: bool) -> Device:
    """Take a device on or off line; `lastSeen` is when it was last online. Takes the lock."""
    with state.lock:
        device = find_device(state, device_id)
        if device.connected and not connected:
            device.last_seen = state.clock.now()
        device.connected = connected
        return device


def _all_fields_extra() -> dict[str, Any]:
    return {
        "enabledRoutes": [],
        "advertisedRoutes": [],
        "clientConnectivity": {
            "endpoints": [],
            "mappingVariesByDestIP": False,
            "latency": {},
            "clientSupports": {
                # No longer tracked by Tailscale: always null.
                "hairPinning": None,
                "ipv6": False,
                "pcp": False,
                "pmp": False,
                "udp": True,
                "upnp": False,
            },
        },
        "postureIdentity": {"disabled": True},
        "sshEnabled": False,
    }


def device_json(device: Device, *, all_fields: bool) -> dict[str, Any]:
    """Return the Device object; `all_fields` adds what Tailscale's `fields=all` adds."""
    body: dict[str, Any] = {
        "id": device.id,
        "nodeId": device.node_id,
        "user": device.user_login,
        "name": device.name,
        "hostname": device.hostname,
        "addresses": list(device.addresses),
        "os": device.os,
        "clientVersion": device.client_version,
        "created": rfc3339(device.created),
        "expires": rfc3339(device.expires),
        "keyExpiryDisabled": device.expires is None,
        "authorized": device.authorized,
        "isEphemeral": device.is_ephemeral,
        "tags": list(device.tags),
        "connectedToControl": device.connected,
        "updateAvailable": False,
        "isExternal": False,
        "blocksIncomingConnections": False,
        "machineKey": device.machine_key,
        "nodeKey": device.node_key,
        "tailnetLockKey": device.tailnet_lock_key,
        "tailnetLockError": "",
    }
    # Tailscale leaves lastSeen out while the device is connected.
    if not device.connected:
        body["lastSeen"] = rfc3339(device.last_seen)
    if all_fields:
        body.update(_all_fields_extra())
    return body


def _value_matches(value: Any, wanted: str) -> bool:
    if isinstance(value, bool):
        return str(value).lower() == wanted
    if isinstance(value, list):
        return wanted in value
    return value is not None and str(value) == wanted


def filter_devices(
    bodies: list[dict[str, Any]], filters: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """Keep devices matching every filter value: repeats must all hold (`tags=a&tags=b`)."""
    return [
        body
        for body in bodies
        if all(
            _value_matches(body.get(name), wanted)
            for name, values in filters.items()
            for wanted in values
        )
    ]


def _filterable(bodies: list[dict[str, Any]], name: str) -> bool:
    # Top-level fields of simple types and lists filter; objects and unknown names are ignored.
    if name == "lastSeen":
        return True
    return any(name in body and not isinstance(body[name], dict) for body in bodies)


def list_devices(
    state: SandboxState, *, all_fields: bool, filters: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """Return every device, filtered by top-level Device fields named in `filters`."""
    with state.lock:
        bodies = [device_json(device, all_fields=True) for device in state.devices.values()]
    chosen = {name: values for name, values in filters.items() if _filterable(bodies, name)}
    shaped = filter_devices(bodies, chosen)
    if all_fields:
        return shaped
    return [{k: v for k, v in body.items() if k not in ALL_ONLY_FIELDS} for body in shaped]
