"""Every column the key ring seals, and the associated data each value is bound to.

The strings below are inside every stored ciphertext's authentication: changing one makes
every value already sealed under it undecryptable. The modules that write these columns and
``tsprov keys rewrap`` build their contexts here, so the two can never drift apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from service.crypto.keyring import CipherContext
from service.models import (
    ConsentFlow,
    ConsentGrant,
    IdempotencyRecord,
    ProvisioningRequest,
    WebhookEndpoint,
)


def token_context(grant: ConsentGrant, column: Literal["token", "refresh"]) -> CipherContext:
    """A grant's access token (``token``) or refresh token (``refresh``)."""
    return CipherContext("consent_grant", column, str(grant.id), grant.user_id)


def consent_token_context(request: ProvisioningRequest) -> CipherContext:
    """The consent link's token, kept so the link can be shown again."""
    return CipherContext("provisioning_request", "consent_token", str(request.id), request.user_id)


def verifier_context(flow_id: uuid.UUID, request_id: uuid.UUID) -> CipherContext:
    """A consent flow's PKCE verifier; the request id stands where a user id would."""
    return CipherContext("consent_flow", "verifier", str(flow_id), str(request_id))


def idempotency_response_context(record_id: uuid.UUID, caller_id: uuid.UUID) -> CipherContext:
    """A replayable answer; the caller id stands where a user id would."""
    return CipherContext("idempotency_record", "response", str(record_id), str(caller_id))


def webhook_secret_context(endpoint: WebhookEndpoint) -> CipherContext:
    """A webhook endpoint's signing secret; its URL stands where a user id would."""
    return CipherContext("webhook_endpoint", "secret", str(endpoint.id), endpoint.url)


@dataclass(frozen=True)
class SealedColumn:
    """A ciphertext column and how to rebuild the context a row's value was sealed with."""

    model: Any
    attribute: str
    context: Callable[[Any], CipherContext]


SEALED_COLUMNS = (
    SealedColumn(ConsentGrant, "token_ciphertext", lambda row: token_context(row, "token")),
    SealedColumn(ConsentGrant, "refresh_ciphertext", lambda row: token_context(row, "refresh")),
    SealedColumn(ProvisioningRequest, "consent_token_ciphertext", consent_token_context),
    SealedColumn(
        ConsentFlow,
        "verifier_ciphertext",
        lambda row: verifier_context(row.id, row.request_id),
    ),
    SealedColumn(
        IdempotencyRecord,
        "response_ciphertext",
        lambda row: idempotency_response_context(row.id, row.caller_id),
    ),
    SealedColumn(WebhookEndpoint, "secret_ciphertext", webhook_secret_context),
)
