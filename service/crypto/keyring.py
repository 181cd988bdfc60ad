"""The key ring: AES-256-GCM with a key id in every ciphertext and the row as associated data.

Blob layout: ``1 byte key-id length | key id (ASCII) | 12-byte nonce | ciphertext + 16-byte tag``.
The associated data names the table, column, row id and user id, so a ciphertext copied into
another row, column or table fails authentication instead of decrypting to someone else's
secret. This key encrypts and does nothing else: cookies and lookups use random values and
plain hashes, never this key.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
KEY_BYTES = 32
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class KeyRingError(ValueError):
    """The configured key ring cannot be used."""


class DecryptionError(Exception):
    """A ciphertext failed authentication: tampered, or bound to another row."""


class UnknownKeyError(DecryptionError):
    """A ciphertext names a key that is no longer in the ring."""


@dataclass(frozen=True)
class CipherContext:
    """Where a ciphertext lives; it becomes the associated data."""

    table: str
    column: str
    row_id: str
    user_id: str = ""

    def associated_data(self) -> bytes:
        parts = (self.table, self.column, self.row_id, self.user_id)
        return "\x1f".join(parts).encode()


def _decode_key(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise KeyRingError("an encryption key is not base64url") from exc
    if len(raw) != KEY_BYTES:
        raise KeyRingError("an encryption key must be 32 bytes (AES-256)")
    return raw


class KeyRing:
    """Encrypts with the primary key; decrypts with whichever key a ciphertext names."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise KeyRingError("the key ring is empty")
        self.primary_id = keys[0][0]
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys}
        if len(self._ciphers) != len(keys):
            raise KeyRingError("a key id appears twice in the key ring")

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """Read ``KEY_ID:BASE64URL_32_BYTES`` entries, comma-separated, the first primary."""
        keys = []
        for entry in (item.strip() for item in text.split(",")):
            if not entry:
                continue
            key_id, sep, encoded = entry.partition(":")
            if not sep or not KEY_ID_PATTERN.match(key_id):
                raise KeyRingError("key ring entries look like KEY_ID:BASE64URL_32_BYTES")
            keys.append((key_id, _decode_key(encoded)))
        return cls(keys)

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._ciphers)

    def encrypt(self, plaintext: bytes, context: CipherContext) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.primary_id].encrypt(nonce, plaintext, context.associated_data())
        return key_prefix(self.primary_id) + nonce + sealed

    def decrypt(self, blob: bytes, context: CipherContext) -> bytes:
        key_id, nonce, sealed = split_blob(blob)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKeyError(f"ciphertext uses key {key_id!r}, which is not in the key ring")
        try:
            return cipher.decrypt(nonce, sealed, context.associated_data())
        except InvalidTag as exc:
            raise DecryptionError("ciphertext failed authentication") from exc

    def encrypt_text(self, plaintext: str, context: CipherContext) -> bytes:
        return self.encrypt(plaintext.encode(), context)

    def decrypt_text(self, blob: bytes, context: CipherContext) -> str:
        return self.decrypt(blob, context).decode()


def split_blob(blob: bytes) -> tuple[str, bytes, bytes]:
    """Split a stored ciphertext into key id, nonce and sealed bytes."""
    if len(blob) < 1:
        raise DecryptionError("ciphertext is empty")
    id_len = blob[0]
    key_id_bytes = blob[1 : 1 + id_len]
    nonce = blob[1 + id_len : 1 + id_len + NONCE_BYTES]
    sealed = blob[1 + id_len + NONCE_BYTES :]
    if len(key_id_bytes) != id_len or len(nonce) != NONCE_BYTES or len(sealed) < 16:
        raise DecryptionError("ciphertext is truncated")
    try:
        return key_id_bytes.decode("ascii"), nonce, sealed
    except UnicodeDecodeError as exc:
        raise DecryptionError("ciphertext key id is garbled") from exc


def key_prefix(key_id: str) -> bytes:
    """The bytes every ciphertext sealed with ``key_id`` starts with, and no other does."""
    encoded = key_id.encode("ascii")
    return bytes([len(encoded)]) + encoded


def key_id_of(blob: bytes) -> str:
    """The id of the key a ciphertext was sealed with."""
    return split_blob(blob)[0]


def generate_key_entry(key_id: str | None = None) -> str:
    """A fresh key-ring entry, ``KEY_ID:BASE64URL``."""
    key_id = key_id or "k" + secrets.token_hex(4)
    if not KEY_ID_PATTERN.match(key_id):
        raise KeyRingError("key ids are 1-32 characters of letters, digits, '_' and '-'")
    encoded = base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode().rstrip("=")
    return f"{key_id}:{encoded}"
