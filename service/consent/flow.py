"""The consent flow: one-time state and PKCE kept server-side, bound to the browser.

``state``, the browser binding and the consent token are stored only as SHA-256 hashes; the
PKCE verifier must be sent back to Tailscale, so it is sealed instead. A callback consumes
its flow with one conditional UPDATE, so of two identical callbacks exactly one proceeds to
the code exchange, which happens after that consumption has committed.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeGuard

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.crypto.digests import lookup_digest
from service.crypto.keyring import KeyRing
from service.crypto.sealed import verifier_context
from service.db import rows_changed
from service.models import ConsentFlow, ProvisioningRequest
from service.provisioning.status import RequestStatus
from service.provisioning.store import find_by_consent_token
from service.web.errors import BrowserError

FLOW_LIFETIME = timedelta(minutes=10)
# Spent and expired flows are kept a while, so a late callback reads "expired", not "unknown".
FLOW_KEEP = timedelta(hours=1)


@dataclass(frozen=True)
class StartedFlow:
    state: str
    code_challenge: str
    browser_id: str


@dataclass(frozen=True)
class ConsumedFlow:
    flow_id: uuid.UUID
    request_id: uuid.UUID
    verifier: str


def pkce_challenge(verifier: str) -> str:
    """BASE64URL(SHA-256(verifier)) without padding (RFC 7636 S256)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


_BROWSER_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")


def valid_browser_id(value: str | None) -> TypeGuard[str]:
    """A cookie value shaped like the ids we hand out; anything else is ignored."""
    return value is not None and _BROWSER_ID.match(value) is not None


async def find_request_for_consent(session: AsyncSession, token: str) -> ProvisioningRequest:
    """The request a consent link names, if it can still be consented to."""
    request = await find_by_consent_token(session, lookup_digest(token))
    if request is None:
        raise BrowserError(404, "Unknown link", "This consent link is not valid.")
    expires = request.consent_expires_at
    if (
        request.status != RequestStatus.AWAITING_CONSENT
        or expires is None
        or expires <= datetime.now(UTC)
    ):
        raise BrowserError(
            410, "Link no longer valid", "This consent link has expired or was already used."
        )
    return request


async def start_flow(
    session: AsyncSession, key_ring: KeyRing, request: ProvisioningRequest, browser_id: str | None
) -> StartedFlow:
    """A fresh flow for this visit; the browser keeps its id if it already has one."""
    if not valid_browser_id(browser_id):
        browser_id = secrets.token_urlsafe(32)
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(48)  # 64 characters from 48 random bytes
    flow = ConsentFlow(
        id=uuid.uuid4(),
        request_id=request.id,
        state_hash=lookup_digest(state),
        browser_hash=lookup_digest(browser_id),
        expires_at=datetime.now(UTC) + FLOW_LIFETIME,
    )
    flow.verifier_ciphertext = key_ring.encrypt_text(
        verifier, verifier_context(flow.id, request.id)
    )
    session.add(flow)
    await session.flush()
    return StartedFlow(state=state, code_challenge=pkce_challenge(verifier), browser_id=browser_id)


async def confirmable_flow(
    session: AsyncSession, key_ring: KeyRing, state: str, browser_id: str | None
) -> tuple[uuid.UUID, str] | None:
    """The request id and PKCE challenge of an open flow this browser started, else None.

    The confirmation page's CSRF token is the flow's ``state``: only a page served to this
    browser holds it, and the flow cookie (SameSite=Lax) must come with it.
    """
    if not state or not valid_browser_id(browser_id):
        return None
    flow = await session.scalar(
        select(ConsentFlow).where(
            ConsentFlow.state_hash == lookup_digest(state),
            ConsentFlow.browser_hash == lookup_digest(browser_id),
            ConsentFlow.consumed_at.is_(None),
            ConsentFlow.expires_at > datetime.now(UTC),
        )
    )
    if flow is None or flow.verifier_ciphertext is None:
        return None
    verifier = _open_verifier(key_ring, flow.verifier_ciphertext, flow.id, flow.request_id)
    return flow.request_id, pkce_challenge(verifier)


async def consume_flow(
    session: AsyncSession, key_ring: KeyRing, state: str, browser_id: str | None
) -> ConsumedFlow | None:
    """Spend the flow ``state`` names, once, if this browser started it within 10 minutes."""
    if not state or not valid_browser_id(browser_id):
        return None
    now = datetime.now(UTC)
    # FOR UPDATE makes a parallel twin wait, then re-check consumed_at and find it spent.
    flow = await session.scalar(
        select(ConsentFlow)
        .where(
            ConsentFlow.state_hash == lookup_digest(state),
            ConsentFlow.browser_hash == lookup_digest(browser_id),
            ConsentFlow.consumed_at.is_(None),
            ConsentFlow.expires_at > now,
        )
        .with_for_update()
    )
    if flow is None:
        return None
    verifier = _open_verifier(key_ring, flow.verifier_ciphertext, flow.id, flow.request_id)
    flow.consumed_at = now
    flow.verifier_ciphertext = None
    await session.flush()
    return ConsumedFlow(flow.id, flow.request_id, verifier)


async def last_finished_request(session: AsyncSession, browser_id: str | None) -> uuid.UUID | None:
    """The request whose consent this browser completed last, within the hour flows are kept."""
    if not valid_browser_id(browser_id):
        return None
    return await session.scalar(
        select(ConsentFlow.request_id)
        .where(
            ConsentFlow.browser_hash == lookup_digest(browser_id),
            ConsentFlow.consumed_at > datetime.now(UTC) - FLOW_KEEP,
        )
        .order_by(ConsentFlow.consumed_at.desc())
        .limit(1)
    )


def _open_verifier(
    key_ring: KeyRing, sealed: bytes | None, flow_id: uuid.UUID, request_id: uuid.UUID
) -> str:
    if sealed is None:
        return ""
    return key_ring.decrypt_text(sealed, verifier_context(flow_id, request_id))


async def purge_spent_flows(session: AsyncSession) -> int:
    """Flows an hour past their expiry: nothing can consume them, and they say nothing more."""
    cutoff = datetime.now(UTC) - FLOW_KEEP
    return rows_changed(
        await session.execute(delete(ConsentFlow).where(ConsentFlow.expires_at < cutoff))
    )
