"""Checking a webhook from tsprov: Standard Webhooks signatures, via its reference library."""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError, WebhookVerificationError

from tsprov_client.errors import InvalidWebhook
from tsprov_client.models import parse_time

# The Standard Webhooks format prefix, not a secret.
SECRET_PREFIX = "whsec_"  # noqa: S105


@dataclass(frozen=True)
class WebhookEvent:
    """A verified event: ``id`` is the stable ``webhook-id`` (the same on every redelivery,
    so a receiver can drop duplicates), ``data`` carries ids, ``user_id`` and ``status``."""

    id: str
    type: str
    timestamp: datetime | None
    data: dict[str, Any]


def _webhook(secret: str) -> Webhook:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    try:
        return Webhook(secret)
    except (binascii.Error, ValueError, EmptyWebhookSecretError) as exc:
        # The secret is not quoted: a message about it must not become a copy of it.
        raise ValueError(f"a webhook secret is {SECRET_PREFIX} and base64") from exc


def verify_webhook(payload: bytes | str, headers: Mapping[str, str], secret: str) -> WebhookEvent:
    """The event in ``payload`` if its ``webhook-signature`` is right for ``secret`` and its
    ``webhook-timestamp`` within 5 minutes of now; ``InvalidWebhook`` otherwise.

    Pass the body exactly as received (bytes), before any JSON parsing.
    """
    webhook = _webhook(secret)
    # The reference library expects a dict and splits each signature on ","; anything
    # malformed in a header must end as InvalidWebhook, never as a stray exception.
    plain_headers = {str(name): str(value) for name, value in headers.items()}
    try:
        webhook.verify(payload, plain_headers, json_parse=False)
    except (WebhookVerificationError, ValueError, binascii.Error) as exc:
        raise InvalidWebhook(f"webhook not verified: {exc}") from exc
    return _event(payload, plain_headers)


def _event(payload: bytes | str, headers: dict[str, str]) -> WebhookEvent:
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        body = json.loads(payload)
    except ValueError as exc:
        raise InvalidWebhook("a signed webhook whose body is not JSON") from exc
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise InvalidWebhook("a signed webhook that is not a tsprov event")
    data = body.get("data")
    try:
        timestamp = parse_time(body.get("timestamp"))
    except ValueError:
        timestamp = None
    return WebhookEvent(
        id=lowered["webhook-id"],
        type=body["type"],
        timestamp=timestamp,
        data=data if isinstance(data, dict) else {},
    )
