"""The client reading who made a key, a user's login, and deleting a key."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from service.tailscale.client import UpstreamRefused
from tests.unit.tailscale_support import KEYS_PATH, OBSERVER_TOKEN, USER_TOKEN, MakeClient, mint

KEY_ID = "kAbc123CNTRL"
USERS_PATH = "/api/v2/users/uBob1CNTRL"


async def test_a_keys_owner_is_read_with_the_observers_token(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(
        f"{KEYS_PATH}/{KEY_ID}", 200, body={"id": KEY_ID, "userId": "uBob1CNTRL", "invalid": True}
    )
    made.upstream.answer(USERS_PATH, 200, body={"id": "uBob1CNTRL", "loginName": "bob@x.com"})
    owner = await made.client.key_owner(KEY_ID)
    assert owner is not None
    assert (owner.user_id, owner.invalid) == ("uBob1CNTRL", True)
    assert await made.client.user_login(owner.user_id) == "bob@x.com"
    sent = made.upstream.sent(f"{KEYS_PATH}/{KEY_ID}") + made.upstream.sent(USERS_PATH)
    assert {request.headers["authorization"] for request in sent} == {f"Bearer {OBSERVER_TOKEN}"}


async def test_a_key_or_user_tailscale_does_not_show_is_none_and_a_refusal_raises(
    make: MakeClient,
) -> None:
    made = make()
    made.upstream.answer(f"{KEYS_PATH}/{KEY_ID}", 404, body={"message": "key not found"})
    made.upstream.answer(USERS_PATH, 403, body={"message": "missing scope users:read"})
    assert await made.client.key_owner(KEY_ID) is None
    with pytest.raises(UpstreamRefused) as refused:
        await made.client.user_login("uBob1CNTRL")
    assert refused.value.status == 403


async def test_a_mints_answer_names_the_keys_user(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(
        KEYS_PATH, 200, body={"id": KEY_ID, "key": "tskey-auth-k-s", "userId": "uBob1CNTRL"}
    )
    assert (await mint(made.client)).user_id == "uBob1CNTRL"


async def test_deleting_a_key_uses_the_token_given_else_the_observer(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(f"{KEYS_PATH}/{KEY_ID}", 200, 404)
    assert await made.client.delete_key(KEY_ID, SecretStr(USER_TOKEN)) is True
    assert await made.client.delete_key(KEY_ID) is False
    first, second = made.upstream.sent(f"{KEYS_PATH}/{KEY_ID}")
    assert first.headers["authorization"] == f"Bearer {USER_TOKEN}"
    assert second.headers["authorization"] == f"Bearer {OBSERVER_TOKEN}"


@pytest.mark.parametrize("key_id", ["..", "k1/../../devices", "k1?all=true", ""])
async def test_key_and_user_ids_cannot_walk_to_other_endpoints(
    make: MakeClient, key_id: str
) -> None:
    made = make()
    with pytest.raises(ValueError, match="key id"):
        await made.client.key_owner(key_id)
    with pytest.raises(ValueError, match="user id"):
        await made.client.user_login(key_id)
    assert made.upstream.requests == []
