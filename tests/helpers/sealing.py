"""Fill every sealed column once, the way the service's own writers do (rotation tests)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import caller_actor
from service.callers.store import create_caller
from service.consent.flow import start_flow
from service.crypto.keyring import KeyRing
from service.crypto.sealed import idempotency_response_context
from service.grants.store import store_grant
from service.models import IdempotencyRecord
from service.provisioning.create import create_provisioning_request
from service.provisioning.schemas import ProvisioningRequestCreate
from service.settings import Settings
from service.tailscale.client import TokenGrant
from service.webhooks.status import WebhookEventType
from service.webhooks.store import create_endpoint


def reusable_token() -> TokenGrant:
    return TokenGrant(
        access_token=SecretStr("access-" + uuid.uuid4().hex),
        token_type="Bearer",
        expires_in=3600,
        scope="auth_keys:create",
        refresh_token=SecretStr("refresh-" + uuid.uuid4().hex),
        login_name=None,
    )


async def seal_one_of_each(
    session: AsyncSession, settings: Settings, ring: KeyRing, label: str
) -> None:
    """A row in every sealed column, each sealed by ``ring``; names start with ``label``."""
    actor = caller_actor(uuid.uuid4(), f"{label}-test")
    caller, _ = await create_caller(session, f"{label}-{uuid.uuid4().hex[:8]}", ["admin"], [])
    user = f"{label}-{uuid.uuid4().hex[:12]}"
    body = ProvisioningRequestCreate()
    request = await create_provisioning_request(session, settings, ring, actor, user, body)
    await start_flow(session, ring, request, None)
    token = reusable_token()
    await store_grant(
        session,
        ring,
        token,
        user_id=user,
        scope="auth_keys:create",
        actor=actor,
        origin="CONFIG_API",
    )
    record = IdempotencyRecord(
        id=uuid.uuid4(),
        caller_id=caller.id,
        key_hash=os.urandom(32),
        request_hash=os.urandom(32),
        response_status=200,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    context = idempotency_response_context(record.id, caller.id)
    record.response_ciphertext = ring.encrypt(b'{"ok": true}', context)
    session.add(record)
    await session.flush()
    await create_endpoint(
        session,
        ring,
        f"https://{label}.example.com/hooks",
        [WebhookEventType.REQUEST_READY],
        actor=actor,
        origin="CONFIG_API",
    )
