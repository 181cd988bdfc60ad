"""The development environment's secrets, generated once and kept under ``.tsprov/``.

They persist so that grants sealed in one run still decrypt in the next.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from service.crypto import generate_key_entry


@dataclass(frozen=True)
class DevEnvironment:
    app_client_id: str
    app_client_secret: SecretStr
    observer_client_id: str
    observer_client_secret: SecretStr
    encryption_keys: SecretStr


def _generate() -> dict[str, str]:
    return {
        "app_client_id": "k" + secrets.token_hex(8),
        "app_client_secret": "tskey-app-" + secrets.token_urlsafe(24),
        "observer_client_id": "k" + secrets.token_hex(8),
        "observer_client_secret": "tskey-client-" + secrets.token_urlsafe(24),
        "encryption_keys": generate_key_entry("dev1"),
    }


def load_dev_environment(path: Path) -> DevEnvironment:
    if path.exists():
        values = json.loads(path.read_text())
    else:
        values = _generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2))
        os.chmod(path, 0o600)
    return DevEnvironment(
        app_client_id=values["app_client_id"],
        app_client_secret=SecretStr(values["app_client_secret"]),
        observer_client_id=values["observer_client_id"],
        observer_client_secret=SecretStr(values["observer_client_secret"]),
        encryption_keys=SecretStr(values["encryption_keys"]),
    )
