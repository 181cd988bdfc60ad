"""What production refuses to start with: missing or sample secrets, no keys, plain http."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from service.settings.choices import LOCAL_HOSTS, SAMPLE_SECRETS, IdentityBinding

if TYPE_CHECKING:
    from service.settings.definition import Settings


def production_problems(settings: Settings) -> list[str]:
    """Each reason the settings are unsafe for production, in words an operator can act on."""
    problems = []
    if settings.identity_binding == IdentityBinding.OFF:
        problems.append(
            "TSPROV_IDENTITY_BINDING=off is for development only; use before_handout, "
            "or after_join where no identity source works"
        )
    if settings.oauth_client_secret.get_secret_value() in SAMPLE_SECRETS:
        problems.append("TSPROV_OAUTH_CLIENT_SECRET is missing or a sample value")
    if not settings.oauth_client_id:
        problems.append("TSPROV_OAUTH_CLIENT_ID is missing")
    observer_secret = settings.observer_client_secret.get_secret_value()
    if settings.observer_client_id and observer_secret in SAMPLE_SECRETS:
        problems.append("TSPROV_OBSERVER_CLIENT_SECRET is missing or a sample value")
    if not _readable(lambda: settings.key_ring_text):
        problems.append("no encryption key (TSPROV_ENCRYPTION_KEYS, or a non-empty _FILE)")
    if not _readable(lambda: settings.audit_signing_key_text):
        problems.append(
            "no audit signing key (TSPROV_AUDIT_SIGNING_KEY, or a non-empty _FILE): "
            "without it the audit trail cannot prove it was not cut short"
        )
    url = urlsplit(settings.public_url)
    if url.scheme != "https" and url.hostname not in LOCAL_HOSTS:
        problems.append("TSPROV_PUBLIC_URL must be https")
    return problems


def _readable(read: Callable[[], str]) -> bool:
    # Read a key file now: an empty or unreadable one must stop production here, not leave
    # it running without the key it needs.
    try:
        return bool(read())
    except OSError:
        return False
