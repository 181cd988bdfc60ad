"""verify_webhook against events signed with the Standard Webhooks reference library."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook

from tsprov_client import InvalidWebhook, TsprovError, verify_webhook

SECRET = "whsec_" + base64.b64encode(b"client-tests-webhook-secret-32by").decode()
EVENT = {
    "type": "provisioning_request.ready",
    "timestamp": "2026-11-28T20:15:03Z",
    "data": {"id": "3c9a4b1e-8f2d-4e6a-b5c7-1d0e9f8a7b6c", "user_id": "alice", "status": "ready"},
}


def signed(body: bytes, *, secret: str = SECRET, at: datetime | None = None) -> dict[str, str]:
    """The headers tsprov sends with ``body``."""
    when = at or datetime.now(timezone.utc)
    signature = Webhook(secret).sign("msg_1", when, body.decode())
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
    }


def test_a_signed_event_verifies_and_reads() -> None:
    body = json.dumps(EVENT).encode()
    event = verify_webhook(body, signed(body), SECRET)
    assert (event.id, event.type) == ("msg_1", "provisioning_request.ready")
    assert event.data["status"] == "ready"
    assert event.timestamp == datetime(2026, 11, 28, 20, 15, 3, tzinfo=timezone.utc)


def test_header_names_are_matched_in_any_case() -> None:
    body = json.dumps(EVENT).encode()
    headers = {name.title(): value for name, value in signed(body).items()}
    assert verify_webhook(body, headers, SECRET).id == "msg_1"


def test_a_tampered_body_fails() -> None:
    body = json.dumps(EVENT).encode()
    headers = signed(body)
    tampered = body.replace(b'"alice"', b'"mallory"')
    with pytest.raises(InvalidWebhook):
        verify_webhook(tampered, headers, SECRET)


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()},
        {"webhook-signature": "garbage-without-a-comma"},
        {"webhook-signature": "v1,***not base64***"},
        {"webhook-id": "msg_2"},
        {"webhook-timestamp": "yesterday"},
    ],
)
def test_a_tampered_or_malformed_header_fails_as_invalid_webhook(change: dict[str, str]) -> None:
    body = json.dumps(EVENT).encode()
    with pytest.raises(InvalidWebhook) as refused:
        verify_webhook(body, {**signed(body), **change}, SECRET)
    assert isinstance(refused.value, TsprovError)


def test_a_missing_header_fails() -> None:
    body = json.dumps(EVENT).encode()
    headers = signed(body)
    del headers["webhook-signature"]
    with pytest.raises(InvalidWebhook):
        verify_webhook(body, headers, SECRET)


def test_another_secret_fails() -> None:
    body = json.dumps(EVENT).encode()
    other = "whsec_" + base64.b64encode(b"another-secret-of-thirty-two-byt").decode()
    with pytest.raises(InvalidWebhook):
        verify_webhook(body, signed(body, secret=other), SECRET)


def test_an_old_event_fails_even_when_signed() -> None:
    body = json.dumps(EVENT).encode()
    old = datetime.now(timezone.utc) - timedelta(minutes=10)
    with pytest.raises(InvalidWebhook):
        verify_webhook(body, signed(body, at=old), SECRET)


def test_a_secret_in_the_wrong_format_is_refused_without_being_quoted() -> None:
    body = json.dumps(EVENT).encode()
    for wrong in ("not-a-whsec-secret", "whsec_!!!"):
        with pytest.raises(ValueError, match="whsec_") as refused:
            verify_webhook(body, signed(body), wrong)
        assert wrong not in str(refused.value)
