"""`/api/v2/users/{id}` and `/api/v2/tailnet/{t}/users`: the tailnet's users."""

from typing import Annotated, Any

from fastapi import APIRouter

from sandbox.bearer import Caller, StateDep, TailnetDep, scoped
from sandbox.users import find_user, list_users

router = APIRouter(prefix="/api/v2", tags=["users"])
UserReader = Annotated[Caller, scoped("users:read")]


@router.get("/users/{user_id}")
async def get_user(caller: UserReader, state: StateDep, user_id: str) -> dict[str, Any]:
    """Return one user: its login name, display name, role, devices."""
    with state.lock:
        return find_user(state, user_id)


@router.get("/tailnet/{tailnet}/users")
async def get_users(
    caller: UserReader,
    tailnet: TailnetDep,
    state: StateDep,
    type: str = "member",
    role: str = "all",
) -> dict[str, Any]:
    """List users, narrowed by `type` (member, shared, all) and `role`."""
    with state.lock:
        return {"users": list_users(state, type, role)}
