"""`/api/v2/tailnet/{t}/oauth-apps`: the OAuth-app admin API."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from sandbox.bearer import Caller, CallerDep, StateDep, TailnetDep
from sandbox.errors import NOT_PERMITTED, ApiError
from sandbox.oauth_apps.registry import (
    app_json,
    create_oauth_app,
    delete_oauth_app,
    find_oauth_app,
    replace_oauth_app,
)
from sandbox.oauth_apps.rules import check_app_body
from sandbox.schemas import OAuthAppBody

router = APIRouter(prefix="/api/v2/tailnet/{tailnet}/oauth-apps", tags=["oauth-apps"])


def _permitted(scope: str) -> Any:
    """Demand `scope`, refusing in Tailscale's observed words."""

    def caller_with_scope(caller: CallerDep) -> Caller:
        if not caller.holds(scope):
            raise ApiError(403, NOT_PERMITTED)
        return caller

    return Depends(caller_with_scope)


AppReader = Annotated[Caller, _permitted("oauth_apps:read")]
AppAdmin = Annotated[Caller, _permitted("oauth_apps")]


@router.post("")
async def create_app_route(
    caller: AppAdmin, tailnet: TailnetDep, state: StateDep, body: OAuthAppBody
) -> dict[str, Any]:
    """Register an OAuth app; the response alone carries `clientSecret`."""
    check_app_body(body, caller)
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
    check_app_body(body, caller)
    return replace_oauth_app(state, app_id, body, caller.actor)


@router.delete("/{app_id}")
async def delete_app(
    caller: AppAdmin, tailnet: TailnetDep, state: StateDep, app_id: str
) -> Response:
    """Delete an OAuth app."""
    delete_oauth_app(state, app_id, caller.actor)
    return Response(status_code=200)
