"""Registering endpoints: admins only, secrets shown once, and destinations inside the
network refused unless allowlisted."""

from __future__ import annotations

import httpx
import pytest

from service.settings import Settings
from service.state import AppContext
from service.webhooks.destinations import RefusedDestination, check_destination
from tests.conftest import CallerFactory, bearer

READY = ["provisioning_request.ready"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://10.1.2.3/hook", "private"),
        ("https://192.168.0.10/hook", "private"),
        ("https://172.16.5.4:8443/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://169.254.10.1/hook", "link-local"),
        ("https://[fd00::1]/hook", "private"),
        ("https://[::ffff:10.0.0.1]/hook", "private"),
        ("https://100.101.102.103/hook", "shared"),
        ("https://0.0.0.0/hook", "private or reserved"),
        ("http://93.184.216.34/hook", "https"),
        ("https://user:pw@93.184.216.34/hook", "user name"),
        ("ftp://93.184.216.34/hook", "https://host/path"),
    ],
)
async def test_a_url_inside_the_network_is_refused_at_registration(
    client: httpx.AsyncClient, make_caller: CallerFactory, url: str, reason: str
) -> None:
    admin = bearer(await make_caller("admin"))
    answer = await client.post("/v1/webhooks", headers=admin, json={"url": url, "events": READY})
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "validation_failed"
    assert reason in answer.json()["detail"]
    assert (await client.get("/v1/webhooks", headers=admin)).json()["items"] == []


async def test_an_allowlisted_network_may_be_registered(
    client: httpx.AsyncClient, context: AppContext, make_caller: CallerFactory
) -> None:
    context.settings = context.settings.model_copy(
        update={"webhook_allowed_networks": ["10.20.0.0/16"]}
    )
    admin = bearer(await make_caller("admin"))
    inside = {"url": "https://10.20.3.4/hook", "events": READY}
    outside = {"url": "https://10.21.3.4/hook", "events": READY}
    assert (await client.post("/v1/webhooks", headers=admin, json=inside)).status_code == 201
    assert (await client.post("/v1/webhooks", headers=admin, json=outside)).status_code == 422


async def test_loopback_is_refused_outside_development(settings: Settings) -> None:
    production = settings.model_copy(update={"env": "production"})
    with pytest.raises(RefusedDestination, match="loopback"):
        await check_destination("https://127.0.0.1:9443/hook", production)
    with pytest.raises(RefusedDestination, match="loopback"):
        await check_destination("https://localhost/hook", production)
    target = await check_destination("http://localhost:8080/hook", settings)
    assert target.url.host in {"127.0.0.1", "::1"}
    assert target.host_header == "localhost:8080"


async def test_the_secret_is_shown_at_creation_and_rotation_only(
    client: httpx.AsyncClient, make_caller: CallerFactory
) -> None:
    admin = bearer(await make_caller("admin"))
    body = {"url": "https://93.184.216.34/hook", "events": [*READY, "grant.revoked"]}
    created = await client.post("/v1/webhooks", headers=admin, json=body)
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    webhook_id = created.json()["id"]

    listed = (await client.get("/v1/webhooks", headers=admin)).json()["items"]
    assert [item["id"] for item in listed] == [webhook_id]
    assert "secret" not in listed[0]
    assert listed[0]["events"] == ["grant.revoked", "provisioning_request.ready"]

    rotated = await client.post(f"/v1/webhooks/{webhook_id}/rotate-secret", headers=admin)
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != secret

    assert (await client.delete(f"/v1/webhooks/{webhook_id}", headers=admin)).status_code == 204
    gone = await client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=admin)
    assert gone.status_code == 404


async def test_webhooks_are_for_admins(
    client: httpx.AsyncClient, make_caller: CallerFactory
) -> None:
    provisioner = bearer(await make_caller("provision", "read", "audit"))
    body = {"url": "https://93.184.216.34/hook", "events": READY}
    assert (await client.post("/v1/webhooks", headers=provisioner, json=body)).status_code == 403
    assert (await client.get("/v1/webhooks", headers=provisioner)).status_code == 403


async def test_an_unknown_event_is_refused(
    client: httpx.AsyncClient, make_caller: CallerFactory
) -> None:
    admin = bearer(await make_caller("admin"))
    body = {"url": "https://93.184.216.34/hook", "events": ["provisioning_request.created"]}
    answer = await client.post("/v1/webhooks", headers=admin, json=body)
    assert answer.status_code == 422
