"""`/api/v2/tailnet/{t}/oauth-apps`: the OAuth-app admin API."""

from typing import Annotated, Any

from fastapi import APIRouter, Response

from sandbox.bearer import Caller, StateDep, TailnetDep, scoped
from sandbox.oauth_apps import (
    app_json,
    create_oauth_app,
    delete_oauth_app,
    find_oauth_app,
    replace_oauth_app,
)
from sandbox.schemas import OAuthAppBody

router = APIRouter(prefix="/api/v2/tailnet/{tailnet}/oauth-apps", tags=["oauth-apps"])
AppReader = Annotated[Caller, scoped("oauth_apps:read")]
AppAdmin = Annotated[Caller, scoped("oauth_apps")]


@router.post("")
async def create_app_route(
    caller: AppAdmin, tailnet: TailnetDep, state: StateDep, body: OAuthAppBody
) -> dict[str, Any]:
    """Register an OAuth app; the response alone carries `clientSecret`."""
    return create_oauth_app(state, body, caller.actor)


@router.get("")
async def list_apps(caller: AppReader, tailnet: TailnetDep, state: StateDep) -> dict[str, Any]:
    """List OAuth apps without secrets."""
    with state.lock:
        return {"oauthApps": [app_json(app) for app in state.apps.values()]}


@router.get("/{app_id}")
async def get_app(
    caller: AppReader, tailnet: TailnetDep, state: StateDep, app_id: str
) -> dict[str, Any]:
    """Return one OAuth app without its secret."""
    with state.lock:
        return app_json(find_oauth_app(state, app_id))


@router.put("/{app_id}")
async def replace_app(
    caller: AppAdmin, tailnet: TailnetDep, state: StateDep, app_id: str, body: OAuthAppBody
) -> dict[str, Any]:
    """Replace an OAuth app's fields (full replacement)."""
    return replace_oauth_app(state, app_id, body, caller.actor)


@router.delete("/{app_id}")
async def delete_app(
    caller: AppAdmin, tailnet: TailnetDep, state: StateDep, app_id: str
) -> Response:
    """Delete an OAuth app."""
    delete_oauth_app(state, app_id, caller.actor)
    return Response(status_code=200)
