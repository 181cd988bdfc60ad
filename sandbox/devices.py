"""Devices: joining with an auth key, the Device object, lookups and deletion."""

import re
import secrets
from datetime import timedelta
from typing import Any

from sandbox.audit import Target, record_event, user_actor
from sandbox.clock import rfc3339
from sandbox.errors import ApiError
from sandbox.identifiers import new_legacy_id, new_stable_id, secret_matches
from sandbox.models import Actor, AuthKey, Device
from sandbox.state import SandboxState

CLIENT_VERSION = "1.86.2-t1a2b3c4d5-g6e7f8a9b0"
NODE_KEY_LIFETIME = timedelta(days=180)
TAGGED_DEVICES_USER = "tagged-devices"
_AUTH_KEY_PATTERN = re.compile(r"^tskey-auth-(?P<id>[A-Za-z0-9]+)-[A-Za-z0-9]+$")
_NOT_A_DNS_CHARACTER = re.compile(r"[^a-z0-9-]+")


def _usable_key(state: SandboxState, auth_key: str) -> AuthKey:
    match = _AUTH_KEY_PATTERN.match(auth_key)
    key = state.keys.get(match["id"]) if match else None
    if key is None or not secret_matches(auth_key, key.secret_digest):
        raise ApiError(400, "invalid key: unable to validate API key")
    if key.revoked is not None:
        raise ApiError(400, "invalid key: key has been revoked")
    if key.expires <= state.clock.now():
        raise ApiError(400, "invalid key: key has expired")
    if not key.reusable and key.uses > 0:
        raise ApiError(400, "invalid key: one-time key has already been used")
    return key


def _dns_label(state: SandboxState, hostname: str) -> str:
    base = _NOT_A_DNS_CHARACTER.sub("-", hostname.lower()).strip("-")[:63] or "device"
    taken = {device.name.split(".", 1)[0] for device in state.devices.values()}
    label, suffix = base, 0
    while label in taken:
        suffix += 1
        label = f"{base}-{suffix}"
    return label


def _next_addresses(state: SandboxState) -> list[str]:
    number = state.next_address
    state.next_address += 1
    return [f"100.64.{number // 256}.{number % 256}", f"fd7a:115c:a1e0::{number:x}"]


def _owner(state: SandboxState, key: AuthKey) -> tuple[str, str, Actor]:
    """Return the device's user id, `user` field and the actor that logs its creation."""
    if key.tags:
        return "", TAGGED_DEVICES_USER, key.creator
    if key.user_id in state.users:
        user = state.users[key.user_id]
        return user.id, user.login_name, user_actor(user)
    # An admin-token key carries no user; Tailscale's admin keys belong to the admin.
    return state.admin.id, state.admin.login_name, user_actor(state.admin)


def join_with_key(state: SandboxState, auth_key: str, hostname: str, os_name: str) -> Device:
    """Do what `tailscale up --auth-key` does: consume the key and add a device."""
    with state.lock:
        key = _usable_key(state, auth_key)
        key.uses += 1
        user_id, user_login, actor = _owner(state, key)
        now = state.clock.now()
        tagged = bool(key.tags)
        device = Device(
            id=new_legacy_id(),
            node_id=new_stable_id("n"),
            user_id=user_id,
            user_login=user_login,
            hostname=hostname,
            name=f"{_dns_label(state, hostname)}.{state.dns_suffix}.ts.net",
            addresses=_next_addresses(state),
            os=os_name,
            client_version=CLIENT_VERSION,
            created=now,
            last_seen=now,
            expires=None if tagged else now + NODE_KEY_LIFETIME,
            authorized=key.preauthorized or not state.switches.device_approval,
            is_ephemeral=key.ephemeral,
            tags=list(key.tags),
            machine_key="mkey:" + secrets.token_hex(32),
            node_key="nodekey:" + secrets.token_hex(32),
            key_id=key.id,
        )
        state.devices[device.node_id] = device
        record_event(
            state,
            actor=actor,
            target=Target("NODE", device.node_id, device.name, is_ephemeral=device.is_ephemeral),
            action="CREATE",
            origin="NODE",
            new={"user": device.user_login, "tags": device.tags, "keyId": key.id},
        )
        return device


def find_device(state: SandboxState, device_id: str) -> Device:
    """Return a device by nodeId or legacy id, or raise 404. Caller holds the lock."""
    device = state.devices.get(device_id) or next(
        (d for d in state.devices.values() if d.id == device_id), None
    )
    if device is None:
        raise ApiError(404, "device not found")
    return device


def delete_device(state: SandboxState, device_id: str, *, actor: Actor) -> None:
    """Remove a device from the tailnet and log NODE.DELETE. Takes the lock."""
    with state.lock:
        device = find_device(state, device_id)
        del state.devices[device.node_id]
        record_event(
            state,
            actor=actor,
            target=Target("NODE", device.node_id, device.name, is_ephemeral=device.is_ephemeral),
            action="DELETE",
            old={"user": device.user_login, "tags": device.tags},
        )


def _all_fields_extra() -> dict[str, Any]:
    return {
        "enabledRoutes": [],
        "advertisedRoutes": [],
        "clientConnectivity": {
            "endpoints": [],
            "mappingVariesByDestIP": False,
            "latency": {},
            "clientSupports": {
                "hairPinning": False,
                "ipv6": False,
                "pcp": False,
                "pmp": False,
                "udp": True,
                "upnp": False,
            },
        },
        "postureIdentity": {"disabled": True},
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
        "lastSeen": rfc3339(device.last_seen),
        "expires": rfc3339(device.expires),
        "keyExpiryDisabled": device.expires is None,
        "authorized": device.authorized,
        "isEphemeral": device.is_ephemeral,
        "tags": list(device.tags),
        "connectedToControl": True,
        "updateAvailable": False,
        "isExternal": False,
        "blocksIncomingConnections": False,
        "machineKey": device.machine_key,
        "nodeKey": device.node_key,
    }
    if all_fields:
        body.update(_all_fields_extra())
    return body


def _field_matches(value: Any, wanted: list[str]) -> bool:
    if isinstance(value, bool):
        return str(value).lower() in wanted
    if isinstance(value, list):
        return any(item in wanted for item in value)
    return str(value) in wanted


def filter_devices(
    bodies: list[dict[str, Any]], filters: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """Keep devices whose named top-level fields match; values of one field are alternatives."""
    return [
        body
        for body in bodies
        if all(_field_matches(body[name], values) for name, values in filters.items())
    ]


def list_devices(
    state: SandboxState, *, all_fields: bool, filters: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """Return every device, filtered by top-level Device fields named in `filters`."""
    with state.lock:
        bodies = [device_json(device, all_fields=True) for device in state.devices.values()]
    shaped = filter_devices(bodies, {n: v for n, v in filters.items() if bodies and n in bodies[0]})
    if all_fields:
        return shaped
    extra = _all_fields_extra().keys()
    return [{k: v for k, v in body.items() if k not in extra} for body in shaped]
