"""tsprov-enroll end to end: the real service and sandbox, a stand-in ``tailscale`` on PATH."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from person import open_consent_link
from running_stack import RunningStack

from tsprov_client import (
    Client,
    ConsentTimeout,
    RequestCancelled,
    RequestExpired,
    TsprovError,
)
from tsprov_client.enroll.command import warn_if_cleartext
from tsprov_client.enroll.exit_codes import ExitCode, exit_code_for
from tsprov_client.errors import NotFound, RequestIdentityMismatch, RequestIdentityUnverified
from tsprov_client.models import ProvisioningRequest

ENROLL = str(Path(sys.executable).with_name("tsprov-enroll"))
STAND_IN = Path(__file__).with_name("tailscale_stand_in.py")


@dataclass
class Enrolment:
    returncode: int
    stdout: str
    stderr: str
    argv: list[str]
    record: dict[str, Any] | None


@pytest.fixture
def enroll(stack: RunningStack, caller_key: str, tmp_path: Path) -> Callable[..., Enrolment]:
    """``enroll("--user", u, on_link=visit)`` runs tsprov-enroll until it exits."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tailscale = bin_dir / "tailscale"
    tailscale.write_text(f"#!{sys.executable}\n{STAND_IN.read_text()}")
    tailscale.chmod(0o755)
    record = tmp_path / "tailscale-record.json"

    def run(
        *args: str, on_link: Callable[[str], object] = open_consent_link, **environment: str
    ) -> Enrolment:
        argv = [ENROLL, "--server", stack.service_url, *args]
        env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "TSPROV_API_KEY": caller_key,
            "STAND_IN_SANDBOX": stack.sandbox_url,
            "STAND_IN_RECORD": str(record),
            **environment,
        }
        process = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert process.stderr is not None
        seen = []
        for line in process.stderr:
            seen.append(line)
            if line.startswith("  http"):
                on_link(line.strip())
                break
        stdout, rest = process.communicate(timeout=90)
        recorded = json.loads(record.read_text()) if record.exists() else None
        return Enrolment(process.returncode, stdout, "".join(seen) + rest, argv, recorded)

    return run


@pytest.mark.usefixtures("approving_as_alice")
def test_enroll_joins_with_a_key_only_a_private_file_ever_held(
    enroll: Callable[..., Enrolment], alice: str
) -> None:
    done = enroll("--user", alice, "--hostname", "enrolled-1", "--wait", "60")

    assert done.returncode == ExitCode.JOINED, done.stderr
    record = done.record
    assert record is not None
    assert record["join_status"] == 200
    assert record["device"]["user"] == "alice@example.com"
    assert record["device"]["hostname"] == "enrolled-1"
    key = record["key"]
    assert key.startswith("tskey-auth-")
    assert record["key_mode"] == 0o600
    assert not Path(record["auth_key_option"].removeprefix("file:")).exists()
    assert all(key not in arg for arg in record["argv"] + done.argv)
    assert key not in done.stdout + done.stderr
    assert "▀" in done.stderr or "▄" in done.stderr  # the QR code, drawn in half blocks


@pytest.mark.usefixtures("approving_as_alice")
def test_print_only_prints_the_line_and_runs_nothing(
    enroll: Callable[..., Enrolment], alice: str
) -> None:
    done = enroll("--user", alice, "--hostname", "printed-1", "--print-only", "--no-qr")

    assert done.returncode == ExitCode.JOINED, done.stderr
    line = done.stdout.strip()
    assert line.startswith("tailscale up --auth-key=tskey-auth-")
    assert line.endswith("--hostname=printed-1")
    assert done.record is None


@pytest.mark.usefixtures("approving_as_alice")
def test_a_failing_tailscale_up_exits_6_and_still_removes_the_key(
    enroll: Callable[..., Enrolment], alice: str
) -> None:
    done = enroll("--user", alice, STAND_IN_EXIT="1")

    assert done.returncode == ExitCode.TAILSCALE_FAILED
    assert done.record is not None
    assert not Path(done.record["auth_key_option"].removeprefix("file:")).exists()


def test_a_cancelled_request_exits_3(
    enroll: Callable[..., Enrolment], client: Client, alice: str
) -> None:
    def cancel(_url: str) -> None:
        client.cancel(client.list_requests(alice, status="awaiting_consent").items[0].id)

    done = enroll("--user", alice, "--no-qr", on_link=cancel)

    assert done.returncode == ExitCode.DECLINED, done.stderr
    assert "cancelled" in done.stderr


def test_no_consent_in_time_exits_4_and_leaves_no_open_request(
    enroll: Callable[..., Enrolment], client: Client, alice: str
) -> None:
    done = enroll("--user", alice, "--no-qr", "--wait", "2", on_link=lambda _url: None)

    assert done.returncode == ExitCode.EXPIRED, done.stderr
    assert client.list_requests(alice, status="awaiting_consent").items == []


def test_without_a_caller_key_it_exits_2_before_calling(
    enroll: Callable[..., Enrolment], alice: str
) -> None:
    done = enroll("--user", alice, TSPROV_API_KEY="")

    assert done.returncode == ExitCode.USAGE
    assert "TSPROV_API_KEY" in done.stderr


def test_a_key_file_is_read_instead_of_the_environment(
    enroll: Callable[..., Enrolment], caller_key: str, alice: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "caller.key"
    key_file.write_text(caller_key + "\n")
    key_file.chmod(0o600)
    done = enroll(
        "--user",
        alice,
        "--key-file",
        str(key_file),
        "--wait",
        "1",
        "--no-qr",
        on_link=lambda _url: None,
        TSPROV_API_KEY="",
    )
    # Accepted: the call went through and only the wait ran out.
    assert done.returncode == ExitCode.EXPIRED, done.stderr


def _ended(status: str, code: str | None = None) -> ProvisioningRequest:
    body: dict[str, Any] = {
        "id": "r1",
        "user_id": "alice",
        "status": status,
        "created_at": "2026-11-28T20:15:03Z",
        "updated_at": "2026-11-28T20:15:03Z",
        "failure": {"code": code, "message": "why"} if code else None,
    }
    return ProvisioningRequest.from_json(body)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (RequestIdentityMismatch(_ended("failed", "identity_mismatch")), ExitCode.IDENTITY),
        (RequestIdentityUnverified(_ended("failed", "identity_unverified")), ExitCode.IDENTITY),
        (RequestCancelled(_ended("cancelled", "declined")), ExitCode.DECLINED),
        (RequestExpired(_ended("expired")), ExitCode.EXPIRED),
        (ConsentTimeout(_ended("awaiting_consent"), cancelled=True), ExitCode.EXPIRED),
        (NotFound("gone"), ExitCode.FAILED),
    ],
)
def test_each_outcome_has_its_documented_exit_status(error: TsprovError, code: ExitCode) -> None:
    assert exit_code_for(error) == code


@pytest.mark.parametrize(
    ("server", "warned"),
    [
        ("http://tsprov.internal", True),
        ("https://tsprov.internal", False),
        ("http://127.0.0.1:8000", False),
        ("http://localhost:8000", False),
    ],
)
def test_a_cleartext_server_beyond_this_machine_is_warned_about(
    server: str, warned: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    warn_if_cleartext(server)
    assert ("not https" in capsys.readouterr().err) is warned
