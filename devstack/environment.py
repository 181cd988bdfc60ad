"""The development environment's secrets, generated once and kept under ``.tsprov/``.

They persist so that grants sealed in one run still decrypt in the next, and checkpoints
signed in one run still verify in the next. The audit signing key has a file of its own
beside them, so that a secrets file written before it existed gains one without being
rewritten.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from service.audit.signing import generate_signing_key
from service.crypto.keyring import generate_key_entry

SIGNING_KEY_FILE = "audit-signing.key"


@dataclass(frozen=True)
class DevEnvironment:
    app_client_id: str
    app_client_secret: SecretStr
    observer_client_id: str
    observer_client_secret: SecretStr
    encryption_keys: SecretStr
    audit_signing_key: SecretStr


def _generate() -> dict[str, str]:
    return {
        "app_client_id": "k" + secrets.token_hex(8),
        "app_client_secret": "tskey-app-" + secrets.token_urlsafe(24),
        "observer_client_id": "k" + secrets.token_hex(8),
        "observer_client_secret": "tskey-client-" + secrets.token_urlsafe(24),
        "encryption_keys": generate_key_entry("dev1"),
    }


def _write_new_private_file(path: Path, text: str) -> None:
    # Created 0600: writing first and tightening after leaves a moment in which anyone on
    # the machine can read the secrets. O_EXCL never writes into (or through a symlink at)
    # a file that was already there.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def load_dev_environment(path: Path) -> DevEnvironment:
    """The secrets kept in ``path``, generated and written there on first use."""
    # The directory is private too: it may already exist (the dev database lives beside the
    # secrets) with the default, world-listable mode.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    if path.exists():
        values = json.loads(path.read_text())
    else:
        values = _generate()
        _write_new_private_file(path, json.dumps(values, indent=2))
    signing_key = path.parent / SIGNING_KEY_FILE
    if not signing_key.exists():
        _write_new_private_file(signing_key, generate_signing_key())
    return DevEnvironment(
        app_client_id=values["app_client_id"],
        app_client_secret=SecretStr(values["app_client_secret"]),
        observer_client_id=values["observer_client_id"],
        observer_client_secret=SecretStr(values["observer_client_secret"]),
        encryption_keys=SecretStr(values["encryption_keys"]),
        audit_signing_key=SecretStr(signing_key.read_text().strip()),
    )
