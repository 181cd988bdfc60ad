"""Fixtures for the sandbox's contract tests: a fresh sandbox per test, over ASGI or real HTTP."""

import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from sandbox.app import create_app
from sandbox.settings import SandboxSettings
from sandbox.state import SandboxState
from tests.helpers.sandbox_flows import (
    ADMIN_TOKEN,
    APP_ID,
    APP_SECRET,
    OBSERVER_ID,
    OBSERVER_SECRET,
    REDIRECT_URI,
    SANDBOX_URL,
)
from tests.helpers.servers import ThreadedServer

SettingsFactory = Callable[..., SandboxSettings]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's own TSPROV_SANDBOX_* variables out of the sandbox's tests."""
    for name in list(os.environ):
        if name.startswith("TSPROV_SANDBOX_"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_settings() -> SettingsFactory:
    """Settings with fixed credentials, so tests never depend on generated ones."""

    def make(**overrides: Any) -> SandboxSettings:
        values: dict[str, Any] = {
            "app_client_id": APP_ID,
            "app_client_secret": SecretStr(APP_SECRET),
            "app_redirect_uris": [REDIRECT_URI, "http://localhost:8000/callback"],
            "observer_client_id": OBSERVER_ID,
            "observer_client_secret": SecretStr(OBSERVER_SECRET),
            "admin_token": SecretStr(ADMIN_TOKEN),
            "users": ["alice@example.com", "bob@example.com", "carol@example.com"],
            "tailnet": "example.com",
        }
        values.update(overrides)
        return SandboxSettings(**values)

    return make


@pytest.fixture
def sandbox_app(make_settings: SettingsFactory) -> FastAPI:
    """A sandbox with default switches (once mode, PKCE optional, no iss)."""
    return create_app(make_settings())


@pytest.fixture
def state(sandbox_app: FastAPI) -> SandboxState:
    """The sandbox's in-memory state, for advancing its clock and inspecting stores."""
    sandbox_state: SandboxState = sandbox_app.state.sandbox
    return sandbox_state


@pytest.fixture
async def api(sandbox_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the sandbox over ASGI (no network)."""
    transport = httpx.ASGITransport(app=sandbox_app)
    async with httpx.AsyncClient(transport=transport, base_url=SANDBOX_URL) as client:
        yield client


@pytest.fixture
def live_sandbox(sandbox_app: FastAPI) -> Iterator[ThreadedServer]:
    """The same sandbox served over real HTTP on a free loopback port."""
    with ThreadedServer(sandbox_app) as server:
        yield server
