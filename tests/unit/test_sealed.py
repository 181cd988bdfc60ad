"""The one list of sealed columns binds each value to exactly the row data already stored."""

from __future__ import annotations

import uuid

import pytest

from service.crypto import sealed
from service.models import (
    ConsentFlow,
    ConsentGrant,
    IdempotencyRecord,
    ProvisioningRequest,
    WebhookEndpoint,
)

ROW = uuid.UUID("0b5e7c1a-3f0e-4c52-9d1e-6a2b8c4d5e6f")
OWNER = uuid.UUID("7d9f2e4b-1a3c-4e5f-8b6d-0c2e4a6b8d0f")
USER = "alice@example.com"

GRANT = ConsentGrant(id=ROW, user_id=USER)
REQUEST = ProvisioningRequest(id=ROW, user_id=USER)
FLOW = ConsentFlow(id=ROW, request_id=OWNER)
RECORD = IdempotencyRecord(id=ROW, caller_id=OWNER)
HOOK_URL = "https://hooks.example.com/tsprov"
ENDPOINT = WebhookEndpoint(id=ROW, url=HOOK_URL)


def _sealed_by(table: str, column: str, owner: str) -> bytes:
    return "\x1f".join((table, column, str(ROW), owner)).encode()


# Every stored ciphertext authenticates these exact bytes: a change here must be a migration.
PINNED = {
    ("consent_grant", "token_ciphertext"): _sealed_by("consent_grant", "token", USER),
    ("consent_grant", "refresh_ciphertext"): _sealed_by("consent_grant", "refresh", USER),
    ("provisioning_request", "consent_token_ciphertext"): _sealed_by(
        "provisioning_request", "consent_token", USER
    ),
    ("consent_flow", "verifier_ciphertext"): _sealed_by("consent_flow", "verifier", str(OWNER)),
    ("idempotency_record", "response_ciphertext"): _sealed_by(
        "idempotency_record", "response", str(OWNER)
    ),
    ("webhook_endpoint", "secret_ciphertext"): _sealed_by("webhook_endpoint", "secret", HOOK_URL),
}
SAMPLES = {
    ConsentGrant: GRANT,
    ProvisioningRequest: REQUEST,
    ConsentFlow: FLOW,
    IdempotencyRecord: RECORD,
    WebhookEndpoint: ENDPOINT,
}


def test_sealed_columns_name_each_sealed_column_once() -> None:
    names = [(c.model.__tablename__, c.attribute) for c in sealed.SEALED_COLUMNS]
    assert sorted(names) == sorted(PINNED)


@pytest.mark.parametrize(
    "column", sealed.SEALED_COLUMNS, ids=lambda c: f"{c.model.__tablename__}.{c.attribute}"
)
def test_each_sealed_column_binds_its_values_to_the_pinned_row_data(
    column: sealed.SealedColumn,
) -> None:
    context = column.context(SAMPLES[column.model])
    assert context.associated_data() == PINNED[(column.model.__tablename__, column.attribute)]
