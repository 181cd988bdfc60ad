"""Tailscale's refusals, read defensively: RFC 6749's ``{"error"}`` from the token endpoint,
Tailscale's own ``{"message"}`` everywhere, each mapped to the one error hierarchy."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from service.tailscale.wire import (
    InvalidGrant,
    OAuthError,
    TailscaleError,
    UpstreamRefused,
    UpstreamUnavailable,
    json_object,
)

_AUTH_KEY = re.compile(r"tskey-[A-Za-z0-9_-]+")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_MAX_ECHO = 200


def scrub(text: str, secrets: Sequence[str]) -> str:
    """Upstream text goes into messages and logs: mask what we sent, keep one short line."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _AUTH_KEY.sub("[redacted]", text)
    return _UNPRINTABLE.sub(" ", text)[:_MAX_ECHO]


def _error_body(body: bytes) -> dict[str, Any]:
    try:
        return json_object(body)
    except UpstreamUnavailable:
        return {}


def refused(status: int, body: bytes, secrets: Sequence[str]) -> UpstreamRefused:
    message = _error_body(body).get("message")
    text = scrub(message, secrets) if isinstance(message, str) else "no message"
    return UpstreamRefused(status, text)


def token_error(
    status: int, body: bytes, secrets: Sequence[str], *, redeeming: bool
) -> TailscaleError:
    """Map a 4xx from the token endpoint, in RFC 6749's shape or in Tailscale's ``{"message"}``.

    ``redeeming`` is True for a code exchange or a refresh: there a ``{"message"}`` refusal is
    classified by its status (see ``_message_oauth_error``). A client-credentials refusal
    without an RFC 6749 ``error`` stays a plain refusal of the observer's credentials.
    """
    data = _error_body(body)
    error = data.get("error")
    if not isinstance(error, str) or not error:
        message = data.get("message")
        if redeeming and isinstance(message, str):
            return _message_oauth_error(status, scrub(message, secrets))
        return refused(status, body, secrets)
    raw = data.get("error_description")
    description = scrub(raw, secrets) if isinstance(raw, str) and raw else None
    kind = InvalidGrant if error == "invalid_grant" else OAuthError
    return kind(scrub(error, secrets), description)


# Tailscale's own shape names no RFC 6749 error, only a status: 401 is the app's credentials
# (seen: "API token invalid"), 400 a malformed request, and 403 a refusal of what was
# presented. For a code or refresh token that is the grant itself (spent, unknown, expired,
# revoked), unless the text names scopes.
_MESSAGE_ERRORS = {400: "invalid_request", 401: "invalid_client"}
_NAMES_SCOPES = re.compile(r"\bscopes?\b", re.IGNORECASE)


def _message_oauth_error(status: int, message: str) -> TailscaleError:
    if status in _MESSAGE_ERRORS:
        return OAuthError(_MESSAGE_ERRORS[status], message or None)
    if status == 403 and _NAMES_SCOPES.search(message):
        return OAuthError("invalid_scope", message)
    if status == 403:
        return InvalidGrant("invalid_grant", message or None)
    return UpstreamRefused(status, message or "no message")
