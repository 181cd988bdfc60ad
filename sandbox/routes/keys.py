"""`/api/v2/tailnet/{t}/keys`: auth keys."""

from typing import Annotated, Any

from fastapi import APIRouter, Response

from sandbox.authkeys import (
    DEFAULT_EXPIRY_SECONDS,
    KeySpec,
    delete_key,
    key_json,
    mint_key,
    visible_key,
)
from sandbox.bearer import Caller, StateDep, TailnetDep, scoped
from sandbox.schemas import KeyCreateBody

router = APIRouter(prefix="/api/v2/tailnet/{tailnet}/keys", tags=["keys"])
KeyMinter = Annotated[Caller, scoped("auth_keys:create")]
KeyReader = Annotated[Caller, scoped("auth_keys:read")]
KeyAdmin = Annotated[Caller, scoped("auth_keys")]


@router.post("")
async def create_key(
    caller: KeyMinter, tailnet: TailnetDep, state: StateDep, body: KeyCreateBody
) -> dict[str, Any]:
    """Mint an auth key; a user token's key is owned by that user."""
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
        key, secret = mint_key(state, spec, owner_id=caller.key_owner_id, creator=caller.actor)
        return key_json(key, state.clock.now(), secret)


@router.get("")
async def list_keys(
    caller: KeyReader, tailnet: TailnetDep, state: StateDep, all: bool = False
) -> dict[str, Any]:
    """List keys: a user token sees its own unless `all=true`; other tokens see every key."""
    own_only = caller.kind == "user" and not all
    with state.lock:
        now = state.clock.now()
        keys = [
            key_json(key, now)
            for key in state.keys.values()
            if not key.deleted and (not own_only or key.user_id == caller.user_id)
        ]
    return {"keys": keys}


@router.get("/{key_id}")
async def get_key(
    caller: KeyReader, tailnet: TailnetDep, state: StateDep, key_id: str
) -> dict[str, Any]:
    """Return one key without its secret."""
    with state.lock:
        return key_json(visible_key(state, key_id), state.clock.now())


@router.delete("/{key_id}")
async def remove_key(
    caller: KeyAdmin, tailnet: TailnetDep, state: StateDep, key_id: str
) -> Response:
    """Delete (revoke) a key; it stops working and disappears from the API."""
    delete_key(state, key_id, actor=caller.actor)
    return Response(status_code=200)
