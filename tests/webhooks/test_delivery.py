"""Webhooks over real HTTP: signed per the Standard Webhooks spec (checked with its reference
library), sent within moments of the change, retried with the same id until answered."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any, cast

import httpx
from standardwebhooks import Webhook

from tests.conftest import bearer
from tests.helpers.browser import Browser
from tests.helpers.steps import create_request, new_user
from tests.helpers.webhook_receiver import WebhookReceiver, about_request
from tests.webhooks.conftest import RegisterWebhook

READY = "provisioning_request.ready"
CLAIMED = "provisioning_request.claimed"
# What the issue promises: a webhook within 2 s of a consent.
LATENCY_PROMISE_SECONDS = 2.0


async def settled_delivery(
    api: httpx.AsyncClient, admin_key: str, endpoint_id: str
) -> dict[str, Any]:
    """The endpoint's one delivery, once the sender has recorded its last attempt (the
    receiver sees a request before the sender sees the answer)."""
    deadline = time.monotonic() + 20
    while True:
        answer = await api.get(f"/v1/webhooks/{endpoint_id}/deliveries", headers=bearer(admin_key))
        [delivery] = answer.json()["items"]
        if delivery["status"] != "pending" or time.monotonic() > deadline:
            return cast(dict[str, Any], delivery)
        await asyncio.sleep(0.05)


async def test_a_consent_reaches_the_receiver_signed_within_two_seconds(
    api: httpx.AsyncClient,
    browser: Browser,
    register: RegisterWebhook,
    caller_key: str,
) -> None:
    with WebhookReceiver() as receiver:
        endpoint = await register(receiver.url, [READY, CLAIMED])
        request = await create_request(api, caller_key, new_user())
        callback_url = await browser.decide(
            await browser.open_consent(request["consent_url"]), "alice@example.com"
        )
        consented_at = time.monotonic()
        assert (await browser.get(callback_url)).status_code == 303

        [ready] = await receiver.wait_for(about_request(request["id"], READY))
        assert ready.at - consented_at < LATENCY_PROMISE_SECONDS

        verified = Webhook(endpoint["secret"]).verify(ready.body, ready.headers)
        assert verified["type"] == READY
        assert verified["data"] == {
            "provisioning_request_id": request["id"],
            "user_id": request["user_id"],
            "status": "ready",
            "grant_id": verified["data"]["grant_id"],
        }
        assert ready.headers["webhook-signature"].startswith("v1,")
        assert ready.headers["webhook-id"].startswith("msg_")

        claim = await api.post(
            f"/v1/provisioning-requests/{request['id']}/claim", headers=bearer(caller_key)
        )
        [claimed] = await receiver.wait_for(about_request(request["id"], CLAIMED))
        assert claim.json()["auth_key"].encode() not in claimed.body
        assert b"tskey" not in claimed.body
        assert claimed.headers["webhook-id"] != ready.headers["webhook-id"]


async def test_a_receiver_failing_three_times_gets_the_event_on_the_fourth_with_one_id(
    api: httpx.AsyncClient,
    browser: Browser,
    register: RegisterWebhook,
    caller_key: str,
    admin_key: str,
) -> None:
    with WebhookReceiver(statuses=[500, 503, 500]) as receiver:
        endpoint = await register(receiver.url, [READY])
        request = await create_request(api, caller_key, new_user())
        await browser.consent(request["consent_url"], "alice@example.com")

        attempts = await receiver.wait_for(about_request(request["id"], READY), count=4)
        assert len({attempt.headers["webhook-id"] for attempt in attempts}) == 1
        assert len({attempt.body for attempt in attempts}) == 1
        for attempt in attempts:
            Webhook(endpoint["secret"]).verify(attempt.body, attempt.headers)
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
        assert gaps[2] > gaps[0]  # backing off, not hammering

        delivery = await settled_delivery(api, admin_key, endpoint["id"])
        assert delivery["status"] == "delivered"
        assert delivery["attempts"] == 4
        assert delivery["webhook_id"] == attempts[0].headers["webhook-id"]
        assert delivery["last_status_code"] == 204


async def test_a_redelivery_sends_the_same_event_again_under_the_same_id(
    api: httpx.AsyncClient,
    browser: Browser,
    register: RegisterWebhook,
    caller_key: str,
    admin_key: str,
) -> None:
    with WebhookReceiver() as receiver:
        endpoint = await register(receiver.url, [READY])
        request = await create_request(api, caller_key, new_user())
        await browser.consent(request["consent_url"], "alice@example.com")
        [first] = await receiver.wait_for(about_request(request["id"], READY))
        deliveries = f"/v1/webhooks/{endpoint['id']}/deliveries"
        delivery = await settled_delivery(api, admin_key, endpoint["id"])

        again = await api.post(
            f"{deliveries}/{delivery['id']}/redeliver", headers=bearer(admin_key)
        )
        assert again.status_code == 202, again.text

        _, second = await receiver.wait_for(about_request(request["id"], READY), count=2)
        assert second.headers["webhook-id"] == first.headers["webhook-id"]
        assert second.body == first.body
        Webhook(endpoint["secret"]).verify(second.body, second.headers)


async def test_a_redirect_is_a_failed_attempt_and_is_not_followed(
    api: httpx.AsyncClient,
    browser: Browser,
    register: RegisterWebhook,
    caller_key: str,
    admin_key: str,
) -> None:
    with WebhookReceiver(statuses=[307]) as receiver:
        await register(receiver.url, [READY])
        request = await create_request(api, caller_key, new_user())
        await browser.consent(request["consent_url"], "alice@example.com")

        attempts = await receiver.wait_for(about_request(request["id"], READY), count=2)
        assert [attempt.path for attempt in attempts] == ["/hooks", "/hooks"]
        assert receiver.matching(lambda item: item.path == "/elsewhere") == []


async def test_an_endpoint_registered_just_after_unwanted_events_gets_the_next_one(
    api: httpx.AsyncClient, register: RegisterWebhook, caller_key: str
) -> None:
    """The service keeps in memory that nobody wants an event; registering one changes that
    for the very next event, on the replica that registered it and, by notice, on the rest."""
    cancelled = "provisioning_request.cancelled"
    with WebhookReceiver() as receiver:
        for _ in range(2):  # nobody wants them: the second is decided from memory
            unwanted = await create_request(api, caller_key, new_user())
            await api.delete(
                f"/v1/provisioning-requests/{unwanted['id']}", headers=bearer(caller_key)
            )
        await register(receiver.url, [cancelled])
        wanted = await create_request(api, caller_key, new_user())
        gone = await api.delete(
            f"/v1/provisioning-requests/{wanted['id']}", headers=bearer(caller_key)
        )
        assert gone.status_code == 204
        [event] = await receiver.wait_for(about_request(wanted["id"], cancelled))
        assert event.json()["data"]["status"] == "cancelled"
        assert not receiver.matching(about_request(unwanted["id"], cancelled))
