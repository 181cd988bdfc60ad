"""The audit signing key (Ed25519) and the signed form of a checkpoint.

The key lives outside the database, like the encryption keys: whoever can rewrite the
database cannot sign a checkpoint for a shortened chain. Its text form is
``ed25519:`` followed by the 32-byte private key in base64url (padding optional).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from service.audit.events import format_time

PREFIX = "ed25519:"


class SigningKeyError(ValueError):
    """The configured audit signing key cannot be used."""


@dataclass(frozen=True)
class CheckpointFacts:
    """What a checkpoint vouches for: the chain's head after ``count`` sealed events."""

    seq: int
    count: int
    hash: bytes
    time: datetime

    def message(self) -> bytes:
        """The signed bytes: RFC 8785 JSON, so anyone can rebuild them from a published line."""
        return rfc8785.dumps(self.as_json())

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "count": self.count,
            "hash": self.hash.hex(),
            "time": format_time(self.time),
        }


def _key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class AuditSigner:
    """Signs checkpoints; its public half checks them."""

    private_key: Ed25519PrivateKey

    @property
    def key_id(self) -> str:
        return _key_id(self.private_key.public_key())

    def sign(self, facts: CheckpointFacts) -> bytes:
        return self.private_key.sign(facts.message())

    def verifies(self, facts: CheckpointFacts, signature: bytes) -> bool:
        try:
            self.private_key.public_key().verify(signature, facts.message())
        except InvalidSignature:
            return False
        return True

    @classmethod
    def parse(cls, text: str) -> AuditSigner:
        text = text.strip()
        if not text.startswith(PREFIX):
            raise SigningKeyError(f"the audit signing key must start with {PREFIX!r}")
        encoded = text.removeprefix(PREFIX)
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError) as exc:
            raise SigningKeyError("the audit signing key is not base64url") from exc
        if len(raw) != 32:
            raise SigningKeyError("the audit signing key must be 32 bytes (Ed25519)")
        return cls(Ed25519PrivateKey.from_private_bytes(raw))


def generate_signing_key() -> str:
    """A new key in its text form, for ``tsprov keys generate --signing``."""
    raw = Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    return PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
