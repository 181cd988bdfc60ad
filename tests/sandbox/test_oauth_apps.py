"""The OAuth-app admin API: create (secret once), list, get, full replacement, delete, checks."""

from typing import Any

import httpx
import pytest

from tests.helpers.sandbox_flows import (
    ADMIN,
    APP_ID,
    REDIRECT_URI,
    bearer,
    consent,
    observer_token,
)

APPS = "/api/v2/tailnet/-/oauth-apps"
APP_FIELDS = {
    "id",
    "name",
    "description",
    "redirectURIs",
    "scopes",
    "allowedNodeAttributes",
    "created",
    "updated",
}


def app_body(**change: Any) -> dict[str, Any]:
    body = {
        "name": "provisioner",
        "description": "Provisions devices",
        "redirectURIs": ["https://tsprov.example.com/callback"],
        "scopes": ["auth_keys:create:once"],
        "allowedNodeAttributes": ["custom:team"],
    }
    body.update(change)
    return body


async def test_create_answers_the_app_with_its_secret_once(api: httpx.AsyncClient) -> None:
    response = await api.post(APPS, json=app_body(), headers=ADMIN)
    assert response.status_code == 200
    app = response.json()
    assert set(app) == APP_FIELDS | {"clientSecret"}
    assert app["clientSecret"].startswith("tskey-app-")
    assert app["name"] == "provisioner"
    assert app["allowedNodeAttributes"] == ["custom:team"]
    fetched = (await api.get(f"{APPS}/{app['id']}", headers=ADMIN)).json()
    assert set(fetched) == APP_FIELDS


async def test_list_includes_the_seeded_app_without_secrets(api: httpx.AsyncClient) -> None:
    await api.post(APPS, json=app_body(), headers=ADMIN)
    body = (await api.get(APPS, headers=ADMIN)).json()
    assert set(body) == {"oauthApps"}
    assert APP_ID in [app["id"] for app in body["oauthApps"]]
    assert all(set(app) == APP_FIELDS for app in body["oauthApps"])


async def test_put_replaces_every_field(api: httpx.AsyncClient) -> None:
    app = (await api.post(APPS, json=app_body(), headers=ADMIN)).json()
    replacement = {
        "name": "renamed",
        "redirectURIs": ["http://localhost:9000/cb"],
        "scopes": ["auth_keys:create"],
    }
    response = await api.put(f"{APPS}/{app['id']}", json=replacement, headers=ADMIN)
    assert response.status_code == 200
    updated = response.json()
    assert set(updated) == APP_FIELDS
    assert updated["description"] == ""
    assert updated["allowedNodeAttributes"] == []
    assert updated["redirectURIs"] == ["http://localhost:9000/cb"]
    assert updated["created"] == app["created"]


async def test_delete_then_404(api: httpx.AsyncClient) -> None:
    app = (await api.post(APPS, json=app_body(), headers=ADMIN)).json()
    assert (await api.delete(f"{APPS}/{app['id']}", headers=ADMIN)).status_code == 200
    for method in ("GET", "DELETE"):
        response = await api.request(method, f"{APPS}/{app['id']}", headers=ADMIN)
        assert response.status_code == 404
        assert set(response.json()) == {"message"}
    put = await api.put(f"{APPS}/{app['id']}", json=app_body(), headers=ADMIN)
    assert put.status_code == 404


@pytest.mark.parametrize(
    "change",
    [
        {"name": "ab"},
        {"name": "x" * 51},
        {"name": "has space"},
        {"description": "x" * 301},
        {"redirectURIs": []},
        {"redirectURIs": ["http://tsprov.example.com/callback"]},
        {"redirectURIs": ["https://10.0.0.1/callback"]},
        {"redirectURIs": ["https://[2001:db8::1]/callback"]},
        {"redirectURIs": ["tsprov://callback"]},
        {"redirectURIs": ["https://tsprov.example.com/cb#frag"]},
        {"scopes": []},
        {"scopes": ["devices:core:read"]},
        {"allowedNodeAttributes": ["team"]},
    ],
)
async def test_invalid_bodies_are_400_with_message(
    api: httpx.AsyncClient, change: dict[str, Any]
) -> None:
    response = await api.post(APPS, json=app_body(**change), headers=ADMIN)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"message"}


@pytest.mark.parametrize(
    "uri",
    [
        "http://localhost:8000/callback",
        "http://127.0.0.1:8000/callback",
        "http://[::1]:8000/callback",
        "https://tsprov.example.com/callback",
    ],
)
async def test_accepted_redirect_uris(api: httpx.AsyncClient, uri: str) -> None:
    response = await api.post(APPS, json=app_body(redirectURIs=[uri]), headers=ADMIN)
    assert response.status_code == 200, response.text


async def test_name_boundaries_are_accepted(api: httpx.AsyncClient) -> None:
    for name in ("a.b", "A_b-9." * 8 + "xy"):
        response = await api.post(APPS, json=app_body(name=name), headers=ADMIN)
        assert response.status_code == 200, response.text


async def test_needs_the_oauth_apps_scope(api: httpx.AsyncClient) -> None:
    headers = bearer(await observer_token(api))
    assert (await api.get(APPS, headers=headers)).status_code == 403
    assert (await api.post(APPS, json=app_body(), headers=headers)).status_code == 403


async def test_a_created_app_runs_the_consent_flow(api: httpx.AsyncClient) -> None:
    app = (await api.post(APPS, json=app_body(redirectURIs=[REDIRECT_URI]), headers=ADMIN)).json()
    query = await consent(api, client_id=app["id"])
    response = await api.post(
        "/api/v2/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"],
            "redirect_uri": REDIRECT_URI,
        },
        auth=(app["id"], app["clientSecret"]),
    )
    assert response.status_code == 200


async def test_app_changes_are_logged(api: httpx.AsyncClient) -> None:
    app = (await api.post(APPS, json=app_body(), headers=ADMIN)).json()
    await api.put(f"{APPS}/{app['id']}", json=app_body(name="renamed"), headers=ADMIN)
    await api.delete(f"{APPS}/{app['id']}", headers=ADMIN)
    response = await api.get(
        "/api/v2/tailnet/-/logging/configuration",
        params={"start": "2000-01-01T00:00:00Z", "end": "2200-01-01T00:00:00Z"},
        headers=ADMIN,
    )
    events = response.json()["logs"]
    assert [(e["target"]["type"], e["action"]) for e in events] == [
        ("OAUTH_APP", "CREATE"),
        ("OAUTH_APP", "UPDATE"),
        ("OAUTH_APP", "DELETE"),
    ]
    assert app["clientSecret"] not in str(events)
