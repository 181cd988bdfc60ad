"""The tailnet's settings object, as `GET /tailnet/{t}/settings` answers it."""

from typing import Any

from sandbox.bearer import Caller
from sandbox.state import SandboxState

# Settings another scope governs, left out for a caller without it.
_GUARDED = {
    "aclsExternallyManagedOn": "policy_file:read",
    "aclsExternalLink": "policy_file:read",
    "networkFlowLoggingOn": "logs:network:read",
}


def tailnet_settings_json(state: SandboxState, caller: Caller) -> dict[str, Any]:
    """Return TailnetSettings; only `devicesApprovalOn` varies (the device_approval switch)."""
    body: dict[str, Any] = {
        "aclsExternallyManagedOn": False,
        "aclsExternalLink": "",
        "devicesApprovalOn": state.switches.device_approval,
        "devicesAutoUpdatesOn": False,
        "devicesKeyDurationDays": 180,
        "usersApprovalOn": False,
        "usersRoleAllowedToJoinExternalTailnets": "member",
        "networkFlowLoggingOn": False,
        "regionalRoutingOn": False,
        "postureIdentityCollectionOn": False,
        "httpsEnabled": False,
    }
    return {k: v for k, v in body.items() if caller.holds(_GUARDED.get(k, "feature_settings:read"))}
