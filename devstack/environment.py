"""The development environment's secrets, generated once and kept under ``.tsprov/``.

They persist so that grants sealed in one run still decrypt in the next, and checkpoints
signed in one run still verify in the next. The file is a ``KEY=value`` env file named as
tsprov's settings, so ``set -a; . .tsprov/dev.env`` or a container's ``--env-file`` gives
``tsprov serve`` the same credentials ``tsprov dev`` uses. The audit signing key has a file
of its own beside it, so that a secrets file written before it existed gains one without
being rewritten.
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
# Each value's key in the file, and its name in an older JSON file of the same secrets.
FILE_KEYS = {
    "app_client_id": "TSPROV_OAUTH_CLIENT_ID",
    "app_client_secret": "TSPROV_OAUTH_CLIENT_SECRET",
    "observer_client_id": "TSPROV_OBSERVER_CLIENT_ID",
    "observer_client_secret": "TSPROV_OBSERVER_CLIENT_SECRET",
    "encryption_keys": "TSPROV_ENCRYPTION_KEYS",
}
HEADER = (
    "# tsprov dev secrets: the sandbox's OAuth app and observer client, and the key ring.\n"
    "# Generated once; keep it private. Load it with: set -a; . .tsprov/dev.env; set +a\n"
)


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


def render_env_file(values: dict[str, str]) -> str:
    # Every value is made of [A-Za-z0-9_:-], so none needs quoting for a shell or Docker.
    return HEADER + "".join(f"{FILE_KEYS[name]}={values[name]}\n" for name in FILE_KEYS)


def parse_env_file(text: str) -> dict[str, str]:
    """The values of a file ``render_env_file`` wrote, or of the JSON file it replaces."""
    if text.lstrip().startswith("{"):
        old: dict[str, str] = json.loads(text)
        return {name: old[name] for name in FILE_KEYS}
    pairs = dict(
        line.split("=", 1)
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    return {name: pairs[key].strip() for name, key in FILE_KEYS.items()}


def _write_new_private_file(path: Path, text: str) -> None:
    # Created 0600: writing first and tightening after leaves a moment in which anyone on
    # the machine can read the secrets. O_EXCL never writes into (or through a symlink at)
    # a file that was already there.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def _replace_private_file(path: Path, text: str) -> None:
    """Rewrite in place of the old file, never leaving a half-written or readable copy."""
    staged = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    _write_new_private_file(staged, text)
    os.replace(staged, path)


def load_dev_environment(path: Path) -> DevEnvironment:
    """The secrets kept in ``path``, generated and written there on first use."""
    # The directory is private too: it may already exist (the dev database lives beside the
    # secrets) with the default, world-listable mode.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    if path.exists():
        text = path.read_text()
        values = parse_env_file(text)
        if text.lstrip().startswith("{"):
            # An older run kept the same secrets as JSON: keep them, in the new format.
            _replace_private_file(path, render_env_file(values))
    else:
        values = _generate()
        _write_new_private_file(path, render_env_file(values))
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
