"""The development secrets file: private from the moment it exists, and an env file."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from devstack.environment import load_dev_environment
from service.audit.signing import AuditSigner
from service.settings import Settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_secrets_file_is_created_private_not_tightened_afterwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_chmod = os.chmod

    def chmod_directories_only(path: str | Path, mode: int) -> None:
        # A chmod after writing would hide the world-readable window; refuse it for files.
        if Path(path).is_dir():
            real_chmod(path, mode)

    monkeypatch.setattr(os, "chmod", chmod_directories_only)
    secrets = tmp_path / ".tsprov" / "dev.env"
    load_dev_environment(secrets)
    assert _mode(secrets) == 0o600
    assert _mode(secrets.parent / "audit-signing.key") == 0o600
    assert _mode(secrets.parent) == 0o700


def test_an_existing_directory_is_made_private_and_the_secrets_persist(tmp_path: Path) -> None:
    directory = tmp_path / ".tsprov"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    first = load_dev_environment(directory / "dev.env")
    assert _mode(directory) == 0o700
    again = load_dev_environment(directory / "dev.env")
    assert again == first
    assert again.encryption_keys.get_secret_value() == first.encryption_keys.get_secret_value()


def test_an_older_secrets_file_gains_a_signing_key_that_persists(tmp_path: Path) -> None:
    first = load_dev_environment(tmp_path / "dev.env")
    (tmp_path / "audit-signing.key").unlink()  # as a secrets file from before signing
    second = load_dev_environment(tmp_path / "dev.env")
    key = second.audit_signing_key.get_secret_value()
    assert AuditSigner.parse(key).key_id
    assert key != first.audit_signing_key.get_secret_value()
    assert second.encryption_keys == first.encryption_keys
    assert load_dev_environment(tmp_path / "dev.env").audit_signing_key == second.audit_signing_key


def test_the_secrets_file_is_an_env_file_tsprov_serve_can_take(tmp_path: Path) -> None:
    path = tmp_path / ".tsprov" / "dev.env"
    loaded = load_dev_environment(path)
    script = f"set -a; . {path}; env"
    shell = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    exported = dict(line.split("=", 1) for line in shell.stdout.splitlines() if "=" in line)
    assert exported["TSPROV_OAUTH_CLIENT_ID"] == loaded.app_client_id
    assert exported["TSPROV_ENCRYPTION_KEYS"] == loaded.encryption_keys.get_secret_value()
    assert Settings(env="development", _env_file=path).observer_client_id == (
        loaded.observer_client_id
    )


def test_an_older_json_secrets_file_keeps_its_secrets_in_the_new_format(tmp_path: Path) -> None:
    directory = tmp_path / ".tsprov"
    directory.mkdir()
    path = directory / "dev.env"
    old = {
        "app_client_id": "kOld",
        "app_client_secret": "tskey-app-old",
        "observer_client_id": "kObs",
        "observer_client_secret": "tskey-client-old",
        "encryption_keys": "dev1:" + "A" * 43,
    }
    path.write_text(json.dumps(old))
    loaded = load_dev_environment(path)
    assert loaded.app_client_secret.get_secret_value() == "tskey-app-old"
    assert "TSPROV_OAUTH_CLIENT_SECRET=tskey-app-old\n" in path.read_text()
    assert _mode(path) == 0o600
    assert load_dev_environment(path) == loaded
