"""Joining: what `tailscale up --auth-key` does to the tailnet."""

import re
import secrets
from datetime import timedelta
from typing import Any

from sandbox.audit.log import Target, record_event, user_actor
from sandbox.devices.attributes import apply_app_attributes
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
    # The key's owner, whatever its `userId` shows; an ownerless key's devices are the admin's.
    user = state.users.get(key.owner_id, state.admin)
    return user.id, user.login_name, user_actor(user)


def _new_device(state: SandboxState, key: AuthKey, hostname: str, os_name: str) -> Device:
    user_id, user_login, _ = _owner(state, key)
    now = state.clock.now()
    return Device(
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
        expires=None if key.tags else now + NODE_KEY_LIFETIME,
        authorized=key.preauthorized or not state.switches.device_approval,
        is_ephemeral=key.ephemeral,
        tags=list(key.tags),
        machine_key="mkey:" + secrets.token_hex(32),
        node_key="nodekey:" + secrets.token_hex(32),
        tailnet_lock_key="tlpub:" + secrets.token_hex(32),
        key_id=key.id,
    )


def join_with_key(state: SandboxState, auth_key: str, hostname: str, os_name: str) -> Device:
    """Consume the key and add a device; it waits for approval unless preauthorized."""
    with state.lock:
        key = _usable_key(state, auth_key)
        key.uses += 1
        device = _new_device(state, key, hostname, os_name)
        state.devices[device.node_id] = device
        new: dict[str, Any] = {"user": device.user_login, "tags": device.tags}
        if state.switches.node_create_key_id:
            # Whether Tailscale's NODE.CREATE names the enrolling key is [?].
            new["keyId"] = key.id
        record_event(
            state,
            actor=_owner(state, key)[2],
            target=Target("NODE", device.node_id, device.name, is_ephemeral=device.is_ephemeral),
            action="CREATE",
            origin="NODE",
            new=new,
        )
        apply_app_attributes(state, device, key)
        return device
