"""The tailnet's users as the API shows them: `GET /users/{id}` and `GET /tailnet/{t}/users`."""

from typing import Any

from sandbox.clock import rfc3339
from sandbox.errors import ApiError
from sandbox.models import User
from sandbox.state import SandboxState

USER_TYPES = ("member", "shared", "all")
USER_ROLES = (
    "owner",
    "member",
    "admin",
    "it-admin",
    "network-admin",
    "billing-admin",
    "auditor",
    "all",
)


def user_json(state: SandboxState, user: User) -> dict[str, Any]:
    """Return the User object; device counts and last-seen follow the user's devices."""
    devices = [device for device in state.devices.values() if device.user_id == user.id]
    seen = max([user.created, *(device.last_seen for device in devices)])
    return {
        "id": user.id,
        "displayName": user.display_name,
        "loginName": user.login_name,
        "profilePicUrl": "",
        "tailnetId": state.settings.tailnet,
        "created": rfc3339(user.created),
        "type": "member",
        "role": user.role,
        "status": "active",
        "deviceCount": len(devices),
        "lastSeen": rfc3339(seen),
        "currentlyConnected": any(device.connected for device in devices),
    }


def find_user(state: SandboxState, user_id: str) -> dict[str, Any]:
    """Return one user's object, or raise 404. Caller holds the lock."""
    user = state.users.get(user_id)
    if user is None:
        raise ApiError(404, "user not found")
    return user_json(state, user)


def list_users(state: SandboxState, user_type: str, role: str) -> list[dict[str, Any]]:
    """Return the users of a type (every seeded one is a member) and role. Caller holds the lock."""
    if user_type not in USER_TYPES:
        raise ApiError(400, f"invalid type {user_type!r}")
    if role not in USER_ROLES:
        raise ApiError(400, f"invalid role {role!r}")
    if user_type == "shared":
        return []
    return [user_json(state, user) for user in state.users.values() if role in ("all", user.role)]
