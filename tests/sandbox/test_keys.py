"""Auth keys: create, list (`all`), get, delete, the Key object and body validation."""

import re
from typing import Any

import httpx
import pytest

from sandbox.state import SandboxState
from tests.helpers.sandbox_flows import ADMIN, admin_key, consent_token, join

KEYS = "/api/v2/tailnet/-/keys"
KEY_FIELDS = {
    "id",
    "keyType",
    "created",
    "updated",
    "expires",
    "revoked",
    "expirySeconds",
    "capabilities",
    "description",
    "invalid",
    "userId",
}
RFC3339_SECONDS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"


def key_body(**create: Any) -> dict[str, Any]:
    return {
        "capabilities": {"devices": {"create": create}},
        "expirySeconds": 3600,
        "description": "dev box",
    }


async def test_create_answers_the_key_object_with_its_secret(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    body = key_body(reusable=True, ephemeral=True, preauthorized=True, tags=["tag:ci"])
    response = await api.post(KEYS, json=body, headers=ADMIN)
    assert response.status_code == 200
    key = response.json()
    assert set(key) == KEY_FIELDS | {"key"}
    assert key["key"].startswith(f"tskey-auth-{key['id']}-")
    assert key["keyType"] == "auth"
    assert key["expirySeconds"] == 3600
    assert key["description"] == "dev box"
    assert key["invalid"] is False
    assert key["revoked"] == "0001-01-01T00:00:00Z"
    # The admin token is the admin's personal token, so the key is the admin's.
    assert key["userId"] == state.admin.id
    assert key["capabilities"] == {
        "devices": {
            "create": {
                "reusable": True,
                "ephemeral": True,
                "preauthorized": True,
                "tags": ["tag:ci"],
            }
        }
    }
    for name in ("created", "updated", "expires"):
        assert key[name].endswith("Z")


async def test_timestamps_are_rfc3339_utc(api: httpx.AsyncClient) -> None:
    key = await admin_key(api)
    for name in ("created", "updated", "expires", "revoked"):
        assert re.match(RFC3339_SECONDS, key[name]), key[name]


async def test_get_and_list_never_show_the_secret(api: httpx.AsyncClient) -> None:
    key = await admin_key(api)
    fetched = (await api.get(f"{KEYS}/{key['id']}", headers=ADMIN)).json()
    assert set(fetched) == KEY_FIELDS
    listed = (await api.get(KEYS, headers=ADMIN)).json()
    assert set(listed) == {"keys"}
    assert [k["id"] for k in listed["keys"]] == [key["id"]]
    assert "key" not in listed["keys"][0]


async def test_a_user_token_lists_its_own_keys_unless_all(api: httpx.AsyncClient) -> None:
    bobs = (await consent_token(api))["access_token"].split("-")[2]
    admins = (await admin_key(api))["id"]
    own = (await api.get(KEYS, headers=ADMIN)).json()["keys"]
    assert [key["id"] for key in own] == [admins]
    every = (await api.get(KEYS, params={"all": "true"}, headers=ADMIN)).json()["keys"]
    assert sorted(key["id"] for key in every) == sorted([admins, bobs])


async def test_listing_shows_active_keys_only(api: httpx.AsyncClient, state: SandboxState) -> None:
    deleted, live = await admin_key(api), await admin_key(api)
    await api.delete(f"{KEYS}/{deleted['id']}", headers=ADMIN)
    short = await api.post(KEYS, json={**key_body(), "expirySeconds": 60}, headers=ADMIN)
    state.clock.advance(61)
    listed = (await api.get(KEYS, headers=ADMIN)).json()["keys"]
    assert [key["id"] for key in listed] == [live["id"]]
    assert short.json()["id"] not in str(listed)


async def test_a_deleted_key_reads_as_invalid(api: httpx.AsyncClient) -> None:
    key = await admin_key(api, reusable=True)
    response = await api.delete(f"{KEYS}/{key['id']}", headers=ADMIN)
    assert response.status_code == 200
    fetched = await api.get(f"{KEYS}/{key['id']}", headers=ADMIN)
    assert fetched.status_code == 200
    assert set(fetched.json()) == KEY_FIELDS
    assert fetched.json()["invalid"] is True
    assert fetched.json()["revoked"] != "0001-01-01T00:00:00Z"
    assert (await join(api, key["key"])).status_code == 400
    again = await api.delete(f"{KEYS}/{key['id']}", headers=ADMIN)
    assert again.status_code == 200
    assert (await api.get(f"{KEYS}/{key['id']}", headers=ADMIN)).json() == fetched.json()


async def test_expired_key_is_invalid(api: httpx.AsyncClient, state: SandboxState) -> None:
    key = await admin_key(api)
    state.clock.advance(3601)
    fetched = (await api.get(f"{KEYS}/{key['id']}", headers=ADMIN)).json()
    assert fetched["invalid"] is True


async def test_default_expiry_is_ninety_days(api: httpx.AsyncClient) -> None:
    response = await api.post(
        KEYS, json={"capabilities": {"devices": {"create": {}}}}, headers=ADMIN
    )
    assert response.json()["expirySeconds"] == 90 * 24 * 3600


@pytest.mark.parametrize(
    "change",
    [
        {"description": "x" * 51},
        {"description": "no_underscores"},
        {"description": "emoji ✓"},
        {"expirySeconds": -1},
        {"expirySeconds": 90 * 24 * 3600 + 1},
        {"capabilities": {"devices": {"create": {"tags": ["ci"]}}}},
        {"capabilities": {"devices": {"create": {"reusable": "often"}}}},
        {"capabilities": None},
        {"keyType": "client"},
    ],
)
async def test_invalid_bodies_are_400_with_message(
    api: httpx.AsyncClient, change: dict[str, Any]
) -> None:
    response = await api.post(KEYS, json={**key_body(), **change}, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"message"}


async def test_fifty_character_description_is_accepted(api: httpx.AsyncClient) -> None:
    body = {**key_body(), "description": "a-b 0" * 10}
    assert (await api.post(KEYS, json=body, headers=ADMIN)).status_code == 200


async def test_unknown_key_is_404(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{KEYS}/kMissingCNTRL", headers=ADMIN)
    assert response.status_code == 404
    assert set(response.json()) == {"message"}
