"""Lookup digests for values that carry their own entropy (consent tokens, state, keys).

The values are random and at least 256 bits, so a plain SHA-256 is enough to find a row by
them without storing them: there is nothing to brute-force, and no key is involved (the
encryption key serves encryption only).
"""

from __future__ import annotations

import hashlib


def lookup_digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()
