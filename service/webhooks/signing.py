"""Standard Webhooks signatures: ``v1,<base64 HMAC-SHA256>`` over ``id.timestamp.body``.

Implemented here with the standard library (the spec is one HMAC); the tests check every
signature with the spec's reference library, ``standardwebhooks``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# The spec's format prefix, not a secret.
SECRET_PREFIX = "whsec_"  # noqa: S105
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret, ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one attempt."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers; the timestamp is the attempt's, the id the event's."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }
