"""The stack every test here talks to, started once per run, and per-test clients of it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest
from running_stack import SANDBOX_USERS, RunningStack, start_stack

from tsprov_client import Client

ALICE = SANDBOX_USERS[0]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(tmp_path_factory.mktemp("stack-logs"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def caller_key(stack: RunningStack) -> str:
    """A key with the scopes a provisioning service has."""
    return stack.create_caller("provision", "read")


@pytest.fixture(scope="session")
def admin_key(stack: RunningStack) -> str:
    return stack.create_caller("admin")


@pytest.fixture
def sandbox(stack: RunningStack) -> Iterator[httpx.Client]:
    """The sandbox's control API, back at its seeded tailnet and start-up switches."""
    with httpx.Client(base_url=stack.sandbox_url, timeout=30) as control:
        control.post("/sandbox/reset").raise_for_status()
        yield control


@pytest.fixture
def approving_as_alice(sandbox: httpx.Client) -> None:
    """The sandbox approves every consent at once as Alice."""
    sandbox.patch("/sandbox/switches", json={"auto_approve": ALICE}).raise_for_status()


@pytest.fixture
def client(stack: RunningStack, caller_key: str) -> Iterator[Client]:
    with Client(stack.service_url, caller_key) as caller:
        yield caller


@pytest.fixture
def admin(stack: RunningStack, admin_key: str) -> Iterator[Client]:
    with Client(stack.service_url, admin_key) as caller:
        yield caller


@pytest.fixture
def alice(admin: Client) -> str:
    """A new user ID whose expected Tailscale login is Alice's."""
    user_id = f"alice-{secrets.token_hex(4)}"
    admin.put_user(user_id, tailscale_login=ALICE)
    return user_id
