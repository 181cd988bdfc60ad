"""Users, their grants' metadata, offboarding and provisioned devices, over ASGI."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import select

from service.crypto.keyring import KeyRing
from service.models import ConsentGrant, ProvisioningRequest
from service.provisioning.status import RequestStatus
from tests.conftest import CallerFactory, bearer
from tests.helpers.api_calls import make_ready
from tests.helpers.steps import Sessions, create_request


async def test_put_creates_then_updates_a_user_and_needs_admin(
    client: httpx.AsyncClient, make_caller: CallerFactory
) -> None:
    admin, reader = await make_caller("admin"), await make_caller("read")
    body = {"tailscale_login": "alice@example.com", "display_name": "Alice"}
    refused = await client.put("/v1/users/alice", headers=bearer(reader), json=body)
    assert refused.status_code == 403
    created = await client.put("/v1/users/alice", headers=bearer(admin), json=body)
    assert created.status_code == 200
    assert created.json()["tailscale_login"] == "alice@example.com"
    renamed = await client.put(
        "/v1/users/alice", headers=bearer(admin), json={"display_name": "Alice A."}
    )
    assert renamed.json()["display_name"] == "Alice A."
    assert renamed.json()["tailscale_login"] == "alice@example.com"
    read = await client.get("/v1/users/alice", headers=bearer(reader))
    assert read.json()["display_name"] == "Alice A."


async def test_a_login_with_spaces_or_control_characters_is_refused(
    client: httpx.AsyncClient, make_caller: CallerFactory
) -> None:
    admin = await make_caller("admin")
    for login in ("alice @example.com", "alice\n@example.com", "x" * 321):
        answer = await client.put(
            "/v1/users/alice", headers=bearer(admin), json={"tailscale_login": login}
        )
        assert answer.status_code == 422


async def test_an_unknown_user_is_not_found(
    client: httpx.AsyncClient, make_caller: CallerFactory
) -> None:
    reader = await make_caller("read")
    assert (await client.get("/v1/users/nobody", headers=bearer(reader))).status_code == 404


async def test_grants_are_listed_as_metadata_without_secrets(
    client: httpx.AsyncClient, make_caller: CallerFactory, sessions: Sessions, key_ring: KeyRing
) -> None:
    key = await make_caller("provision", "read")
    created = await create_request(client, key, "holder")
    await make_ready(sessions, key_ring, created["id"])
    user = await client.get("/v1/users/holder", headers=bearer(key))
    [grant] = user.json()["grants"]
    assert set(grant) == {
        "id",
        "mode",
        "status",
        "login_name",
        "scope",
        "created_at",
        "expires_at",
        "last_used_at",
    }
    assert grant["mode"] == "once"
    assert grant["status"] == "active"
    assert "tskey" not in user.text


async def test_offboarding_revokes_grants_wipes_secrets_and_cancels_open_requests(
    client: httpx.AsyncClient, make_caller: CallerFactory, sessions: Sessions, key_ring: KeyRing
) -> None:
    admin = await make_caller("admin")
    ready = await create_request(client, admin, "leaver")
    waiting = await create_request(client, admin, "leaver")
    await make_ready(sessions, key_ring, ready["id"])
    summary = await client.delete("/v1/users/leaver/grants", headers=bearer(admin))
    assert summary.status_code == 200, summary.text
    assert summary.json() == {
        "user_id": "leaver",
        "grants_revoked": 1,
        "requests_cancelled": 2,
        "devices_deleted": [],
        "devices_not_deleted": [],
    }
    async with sessions() as session:
        grant = await session.scalar(select(ConsentGrant).where(ConsentGrant.user_id == "leaver"))
        assert grant is not None
        assert grant.status == "revoked"
        assert grant.token_ciphertext is None
    for request in (ready, waiting):
        after = await client.get(
            f"/v1/provisioning-requests/{request['id']}", headers=bearer(admin)
        )
        assert after.json()["status"] == "cancelled"


async def test_offboarding_needs_admin(
    client: httpx.AsyncClient, make_caller: CallerFactory
) -> None:
    key = await make_caller("provision", "read")
    assert (await client.delete("/v1/users/x/grants", headers=bearer(key))).status_code == 403


async def test_devices_lists_what_joined_and_deleting_needs_an_observer(
    client: httpx.AsyncClient, make_caller: CallerFactory, sessions: Sessions
) -> None:
    admin = await make_caller("admin")
    created = await create_request(client, admin, "owner")
    async with sessions() as session, session.begin():
        request = await session.get(ProvisioningRequest, uuid.UUID(created["id"]))
        assert request is not None
        request.status = RequestStatus.JOINED
        request.device_node_id = "nNode123"
        request.device_name = "box.example.ts.net"
        request.device_user = "owner@example.com"
        request.device_joined_at = datetime.now(UTC)
    listed = await client.get("/v1/users/owner/devices", headers=bearer(admin))
    [device] = listed.json()["items"]
    assert device["node_id"] == "nNode123"
    assert device["request_id"] == created["id"]
    assert device["live"] is None
    unknown = await client.delete("/v1/users/owner/devices/nOther", headers=bearer(admin))
    assert unknown.status_code == 404
    no_observer = await client.delete("/v1/users/owner/devices/nNode123", headers=bearer(admin))
    assert no_observer.status_code == 503
