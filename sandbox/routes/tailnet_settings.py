"""`/api/v2/tailnet/{t}/settings`: the tailnet's settings, read-only here."""

from typing import Annotated, Any

from fastapi import APIRouter

from sandbox.bearer import Caller, StateDep, TailnetDep, scoped
from sandbox.tailnet import tailnet_settings_json

router = APIRouter(prefix="/api/v2/tailnet/{tailnet}", tags=["tailnet settings"])
SettingsReader = Annotated[Caller, scoped("feature_settings:read")]


@router.get("/settings")
async def get_settings(caller: SettingsReader, tailnet: TailnetDep, state: StateDep) -> Any:
    """Return the settings the caller's scopes may see; `devicesApprovalOn` among them."""
    with state.lock:
        return tailnet_settings_json(state, caller)
