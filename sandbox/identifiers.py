"""Identifier and secret formats shaped like Tailscale's."""

import hashlib
import hmac
import secrets
import string

_ALPHANUMERIC = string.ascii_letters + string.digits


def random_alphanumeric(length: int) -> str:
    """Return `length` random letters and digits."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def new_stable_id(prefix: str) -> str:
    """Return a stable id like Tailscale's (`kAbC123xyz0CNTRL`)."""
    return f"{prefix}{random_alphanumeric(10)}CNTRL"


def new_legacy_id() -> str:
    """Return a 17-digit numeric id like a device's legacy `id`."""
    return str(10**16 + secrets.randbelow(9 * 10**16))


def embedded_secret(prefix: str, owner_id: str) -> str:
    """Return a secret that names what it belongs to, as Tailscale's do: `<prefix><id>-<random>`."""
    return f"{prefix}{owner_id}-{random_alphanumeric(32)}"


def secret_digest(secret: str) -> str:
    """Return the digest under which a secret is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, digest: str) -> bool:
    """Compare a presented secret with a stored digest in constant time."""
    return hmac.compare_digest(secret_digest(secret), digest)
