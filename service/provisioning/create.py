"""Creating a provisioning request, and the consent link it carries while consent is awaited."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ORIGIN_API, Actor, Event, format_optional_time, record_events
from service.crypto.digests import lookup_digest
from service.crypto.keyring import KeyRing
from service.crypto.sealed import consent_token_context
from service.models import ConsentGrant, ProvisioningRequest
from service.provisioning.schemas import ProvisioningRequestCreate
from service.provisioning.status import RequestStatus
from service.provisioning.store.creation import inserted_along, new_request
from service.provisioning.transitions import request_target
from service.settings import IdentityBinding, Settings
from service.users.store import ensure_user_with_live_grant
from service.web.errors import TailscaleLoginRequired, ValidationFailed

# A fresh consent link asked for after the request was made (a grant that needs consent
# again) gets the window a new request gets by default.
DEFAULT_CONSENT_TTL_SECONDS = 3600
# What a caller's body sets on the request as it is (tags are copied to a list apart).
REQUEST_FIELDS = {
    "hostname",
    "description",
    "return_to",
    "ephemeral",
    "preauthorized",
    "expiry_seconds",
}


def return_to_allowed(settings: Settings, path: str | None) -> bool:
    """Literal prefix match on a local path; anything that could leave the site is refused."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return False
    return any(path.startswith(prefix) for prefix in settings.return_to_allowlist)


def issue_consent_link(request: ProvisioningRequest, key_ring: KeyRing, ttl: int) -> None:
    """A fresh unguessable consent token; only its hash and a sealed copy are kept."""
    token = secrets.token_urlsafe(32)
    request.consent_token_hash = lookup_digest(token)
    request.consent_token_ciphertext = key_ring.encrypt_text(token, consent_token_context(request))
    request.consent_expires_at = datetime.now(UTC) + timedelta(seconds=ttl)


def consent_url(settings: Settings, key_ring: KeyRing, request: ProvisioningRequest) -> str | None:
    if request.status != RequestStatus.AWAITING_CONSENT or request.consent_token_ciphertext is None:
        return None
    token = key_ring.decrypt_text(request.consent_token_ciphertext, consent_token_context(request))
    return f"{settings.public_url}/authorize?request={token}"


def _require_expected_login(settings: Settings, user_id: str, login: str | None) -> None:
    """Without a login to compare with, nobody could be refused: anyone's consent would do."""
    if settings.binding != IdentityBinding.BEFORE_HANDOUT:
        return
    if settings.expected_login(user_id, login) is None:
        raise TailscaleLoginRequired(
            f"User {user_id!r} has no expected Tailscale login, so tsprov could not tell who "
            f"consents. Set one with PUT /v1/users/{user_id} and a body "
            '{"tailscale_login": "name@example.com"}, or configure TSPROV_LOGIN_TEMPLATE '
            '(for example "{user_id}@example.com").'
        )


async def create_provisioning_request(
    session: AsyncSession,
    settings: Settings,
    key_ring: KeyRing,
    actor: Actor,
    user_id: str,
    body: ProvisioningRequestCreate,
) -> ProvisioningRequest:
    """``ready`` at once under a live reusable grant, otherwise awaiting consent."""
    request, _ = await create_request_under_grant(session, settings, key_ring, actor, user_id, body)
    return request


async def create_request_under_grant(
    session: AsyncSession,
    settings: Settings,
    key_ring: KeyRing,
    actor: Actor,
    user_id: str,
    body: ProvisioningRequestCreate,
) -> tuple[ProvisioningRequest, ConsentGrant | None]:
    """The new request and the live reusable grant it is ready under, if any.

    The answer names the grant: handing it back spares reading it again (the session keeps
    only weak references, so the row read here would otherwise be gone by then).
    """
    if body.return_to is not None and not return_to_allowed(settings, body.return_to):
        raise ValidationFailed("return_to is not on the allowlist.")
    user, grant = await ensure_user_with_live_grant(session, actor, user_id, origin=ORIGIN_API)
    _require_expected_login(settings, user_id, user.tailscale_login)
    request = new_request(
        user_id=user_id,
        status=RequestStatus.READY if grant else RequestStatus.AWAITING_CONSENT,
        grant_id=grant.id if grant else None,
        created_by=actor.login_name,
        tags=list(body.tags),
        **body.model_dump(include=REQUEST_FIELDS),
    )
    if grant is None:
        issue_consent_link(request, key_ring, body.consent_ttl_seconds)
    consent_expires = format_optional_time(request.consent_expires_at)
    new = {"status": request.status, "consentExpiresAt": consent_expires}
    created = Event(ORIGIN_API, actor, request_target(request), "CREATE", new=new, user_id=user_id)
    await record_events(session, created, along=inserted_along(request))
    return request, grant
