"""`/api/v2/tailnet/{t}/keys`: auth keys (and OAuth clients, read by id)."""

from typing import Annotated, Any

from fastapi import APIRouter, Response

from sandbox.bearer import Caller, CallerDep, StateDep, TailnetDep, scoped
from sandbox.errors import ApiError
from sandbox.keys.access import client_key, key_json, listed_keys, reachable_key
from sandbox.keys.minting import DEFAULT_EXPIRY_SECONDS, KeySpec, delete_key, mint_key
from sandbox.schemas import KeyCreateBody
from sandbox.state import SandboxState

router = APIRouter(prefix="/api/v2/tailnet/{tailnet}/keys", tags=["keys"])
KeyMinter = Annotated[Caller, scoped("auth_keys:create")]
KeyReader = Annotated[Caller, scoped("auth_keys:read")]
KeyAdmin = Annotated[Caller, scoped("auth_keys")]


def _check_client_tags(state: SandboxState, caller: Caller, tags: list[str]) -> None:
    # A key the tailnet owns must carry tags, and only tags its OAuth client holds.
    if caller.kind != "client":
        return
    held = state.clients[caller.client_id].tags
    if not tags or not set(tags) <= set(held):
        raise ApiError(400, f"requested tags {tags} are invalid or not permitted")


@router.post("")
async def create_key(
    caller: KeyMinter, tailnet: TailnetDep, state: StateDep, body: KeyCreateBody
) -> dict[str, Any]:
    """Mint an auth key: a user token's key is that user's, a client token's the tailnet's."""
    create = body.capabilities.devices.create
    spec = KeySpec(
        reusable=create.reusable,
        ephemeral=create.ephemeral,
        preauthorized=create.preauthorized,
        tags=create.tags,
        expiry_seconds=body.expirySeconds or DEFAULT_EXPIRY_SECONDS,
        description=body.description,
    )
    with state.lock:
        _check_client_tags(state, caller, spec.tags)
        key, secret = mint_key(
            state, spec, owner_id=caller.user_id, creator=caller.actor, app_id=caller.app_id
        )
        return key_json(key, state.clock.now(), secret)


@router.get("")
async def list_keys(
    caller: KeyReader, tailnet: TailnetDep, state: StateDep, all: bool = False
) -> dict[str, Any]:
    """List active keys: without `all`, a user token sees its own."""
    with state.lock:
        return {"keys": listed_keys(state, caller, every=all)}


@router.get("/{key_id}")
async def get_key(
    caller: CallerDep, tailnet: TailnetDep, state: StateDep, key_id: str
) -> dict[str, Any]:
    """Return one key without its secret; a deleted or revoked one reads `invalid: true`."""
    with state.lock:
        client = client_key(state, caller, key_id)
        if client is not None:
            return client
        caller.require("auth_keys:read")
        return key_json(reachable_key(state, caller, key_id), state.clock.now())


@router.delete("/{key_id}")
async def remove_key(
    caller: KeyAdmin, tailnet: TailnetDep, state: StateDep, key_id: str
) -> Response:
    """Delete (revoke) a key; it stops working and stays readable as invalid."""
    with state.lock:
        delete_key(state, reachable_key(state, caller, key_id), actor=caller.actor)
    return Response(status_code=200)
