"""Device approval: a device that joins waits until `POST /device/{id}/authorized`."""

from sandbox.audit.log import record_event
from sandbox.devices.listing import find_device, node_target
from sandbox.errors import ApiError
from sandbox.models import Actor
from sandbox.state import SandboxState


def authorize_device(
    state: SandboxState, device_id: str, authorized: bool, *, actor: Actor
) -> None:
    """Approve (or deauthorize) a device; 402 while over the device quota. Takes the lock."""
    with state.lock:
        device = find_device(state, device_id)
        if authorized and state.switches.device_quota_exceeded:
            # Tailscale answers 402 where billing or the device quota forbids an approval.
            raise ApiError(402, "device limit reached: upgrade the plan to approve more devices")
        if device.authorized == authorized:
            return
        device.authorized = authorized
        # Deauthorizing is logged as NODE.REVOKE [?]; the event list has no other fit.
        action = "APPROVE" if authorized else "REVOKE"
        record_event(
            state,
            actor=actor,
            target=node_target(device),
            action=action,
            old={"authorized": not authorized},
            new={"authorized": authorized},
        )
