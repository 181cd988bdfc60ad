"""provision() against the real service and sandbox, in once mode."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from person import open_consent_link, open_consent_link_later
from running_stack import RunningStack

from tsprov_client import (
    AsyncClient,
    Client,
    ConsentPending,
    ConsentTimeout,
    RequestCancelled,
    RequestFailed,
)

WAIT = timedelta(seconds=60)


def join(sandbox: httpx.Client, auth_key: str, hostname: str) -> dict[str, object]:
    """What `tailscale up --auth-key` does, through the sandbox; the new device."""
    joined = sandbox.post("/sandbox/join", json={"authKey": auth_key, "hostname": hostname})
    assert joined.status_code == 200, joined.text
    device: dict[str, object] = joined.json()
    return device


@pytest.mark.usefixtures("approving_as_alice")
def test_provision_creates_waits_for_consent_claims_and_the_key_joins(
    client: Client, alice: str, sandbox: httpx.Client
) -> None:
    links: list[str] = []

    def show(url: str) -> None:
        links.append(url)
        open_consent_link_later(url)

    device = client.provision(alice, hostname="devbox-1", wait=WAIT, on_consent_url=show)

    assert links == [device.consent_url]
    assert device.auth_key.startswith("tskey-auth-")
    assert device.login_name == "alice@example.com"
    assert device.expires_at is not None
    assert device.expires_at > datetime.now(timezone.utc)
    assert device.tailscale_up == f"tailscale up --auth-key={device.auth_key} --hostname=devbox-1"
    assert device.auth_key not in repr(device)
    joined = join(sandbox, device.auth_key, "devbox-1")
    assert joined["user"] == "alice@example.com"
    assert client.get_request(device.request_id).status in ("claimed", "joined")


@pytest.mark.usefixtures("approving_as_alice")
async def test_the_async_client_provisions_with_an_async_callback(
    stack: RunningStack, caller_key: str, alice: str, sandbox: httpx.Client
) -> None:
    async def show(url: str) -> None:
        page = await asyncio.to_thread(open_consent_link, url)
        assert page.status_code == 200

    async with AsyncClient(stack.service_url, caller_key) as client:
        device = await client.provision(alice, wait=WAIT, on_consent_url=show)
        assert (await client.get_request(device.request_id)).status == "claimed"
    assert join(sandbox, device.auth_key, "async-box")["user"] == "alice@example.com"


@pytest.mark.usefixtures("approving_as_alice")
def test_without_a_callback_the_link_comes_back_and_collect_finishes(
    client: Client, alice: str
) -> None:
    with pytest.raises(ConsentPending) as pending:
        client.provision(alice, hostname="later-box", wait=WAIT)
    assert pending.value.consent_url is not None
    open_consent_link(pending.value.consent_url)

    device = client.collect(pending.value.request.id, wait=WAIT)

    assert device.request_id == pending.value.request.id
    assert "--hostname=later-box" in device.tailscale_up


def test_a_request_cancelled_while_waiting_raises_request_cancelled(
    client: Client, alice: str
) -> None:
    def cancel_it(_url: str) -> None:
        waiting = client.list_requests(alice, status="awaiting_consent").items
        client.cancel(waiting[0].id)

    with pytest.raises(RequestCancelled) as ended:
        client.provision(alice, wait=WAIT, on_consent_url=cancel_it)
    assert ended.value.request.status == "cancelled"


def test_nobody_consenting_in_time_raises_consent_timeout_and_cancels(
    client: Client, alice: str
) -> None:
    with pytest.raises(ConsentTimeout) as timed_out:
        client.provision(alice, wait=timedelta(seconds=2), on_consent_url=lambda _url: None)
    assert timed_out.value.cancelled
    assert client.get_request(timed_out.value.request.id).status == "cancelled"


def test_a_consent_by_another_login_ends_the_request_failed(
    client: Client, admin: Client, alice: str, sandbox: httpx.Client
) -> None:
    admin.put_user(alice, tailscale_login="bob@example.com")
    sandbox.patch("/sandbox/switches", json={"auto_approve": "alice@example.com"})

    with pytest.raises(RequestFailed) as failed:
        client.provision(alice, wait=WAIT, on_consent_url=open_consent_link_later)

    assert failed.value.request.status == "failed"
    # Where tsprov says why, the exception is typed by it.
    if failed.value.failure is not None:
        assert failed.value.code == "identity_mismatch"


def test_the_same_idempotency_key_creates_one_request(client: Client, alice: str) -> None:
    first = client.create_request(alice, idempotency_key="create-once-1")
    again = client.create_request(alice, idempotency_key="create-once-1")
    assert again.id == first.id
    assert len(client.list_requests(alice).items) == 1
