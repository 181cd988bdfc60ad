"""Shortcuts for API tests: requests made ready without a browser, by storing a grant."""

from __future__ import annotations

import uuid

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.events import user_actor
from service.crypto.keyring import KeyRing
from service.grants.store import store_grant
from service.provisioning.status import RequestStatus
from service.provisioning.store import load_request
from service.provisioning.transitions import change_status
from service.tailscale.client import TokenGrant


def one_time_token(key: str | None = None) -> TokenGrant:
    return TokenGrant(
        access_token=SecretStr(key or f"tskey-auth-k{uuid.uuid4().hex[:12]}-{uuid.uuid4().hex}"),
        token_type="Bearer",
        expires_in=3600,
        scope="auth_keys:create:once",
        refresh_token=None,
        login_name=None,
    )


async def make_ready(
    sessions: async_sessionmaker[AsyncSession],
    key_ring: KeyRing,
    request_id: str,
    token: TokenGrant | None = None,
) -> None:
    """What a successful consent does, without the browser and Tailscale."""
    async with sessions() as session, session.begin():
        request = await load_request(session, uuid.UUID(request_id), lock=True)
        actor = user_actor(request.user_id, None)
        grant = await store_grant(
            session,
            key_ring,
            token or one_time_token(),
            user_id=request.user_id,
            scope="auth_keys:create:once",
            actor=actor,
            origin="IDENTITY_PROVIDER",
        )
        request.grant_id = grant.id
        request.key_expires_at = grant.expires_at
        await change_status(
            session, request, RequestStatus.READY, actor=actor, origin="IDENTITY_PROVIDER"
        )
