"""tsprov behind the tailscale serve stand-in, for the pages of service/console.

``console_stack`` (a session fixture, registered in tests/conftest.py) runs the sandbox and
tsprov with ``IDENTITY_HEADERS=tailscale-serve`` as real HTTP servers on their own database.
``console_stack.as_login("alice@example.com")`` is the base URL of a stand-in that signs
every request in as that login (one stand-in per login, started on first use): a browser
or client pointed at it is alice. The stand-ins connect from ``PROXY_ADDRESS``, the only
peer tsprov trusts here, so ``console_stack.service_url`` reached directly (from 127.0.0.1)
is an untrusted peer: identity headers sent there are ignored, as forged ones must be.
Logins matching ``CONSOLE_ADMINS`` may enter /console.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from devstack.serve_standin import ServeStandIn
from sandbox.app import create_app as create_sandbox
from service.main import create_app
from service.settings import IdentityHeaders, Settings
from tests.helpers.callers import caller_key_at
from tests.helpers.servers import ThreadedServer
from tests.helpers.stack import TEST_CREDENTIALS, LateApp, migrated_database

CONSOLE_DATABASE = "tsprov_console"
CONSOLE_ADMINS = ["*@ops.example.com"]
PROXY_ADDRESS = "127.0.0.2"
OBSERVER_SCOPES = ["devices:core", "logs:configuration:read", "auth_keys"]


@dataclass
class ConsoleStack:
    service_url: str
    sandbox_url: str
    database_url: str
    settings: Settings
    standins: dict[str, ThreadedServer] = field(default_factory=dict)

    def as_login(self, login: str) -> str:
        """The URL of a stand-in for tailscale serve that names ``login``."""
        if login not in self.standins:
            standin = ServeStandIn(self.service_url, login, source_address=PROXY_ADDRESS)
            server = ThreadedServer(standin)
            self.standins[login] = server.start()
        return self.standins[login].url

    async def new_caller(self, *scopes: str) -> str:
        """A fresh caller key with ``scopes`` (default: every non-admin scope)."""
        chosen = list(scopes) or ["provision", "read", "audit"]
        name = f"console-{uuid.uuid4().hex[:12]}"
        return await caller_key_at(self.settings.database_url, name, chosen)


@pytest.fixture(scope="session")
def console_stack(postgres_server: str, key_ring_text: str) -> Iterator[ConsoleStack]:
    database_url = migrated_database(postgres_server, CONSOLE_DATABASE)
    late = LateApp()
    service = ThreadedServer(late)
    # The observer may delete keys, so a withdrawn grant's unclaimed key is deleted upstream.
    sandbox_settings = TEST_CREDENTIALS.sandbox_settings(
        [f"{service.url}/callback"], observer_scopes=OBSERVER_SCOPES
    )
    with ThreadedServer(create_sandbox(sandbox_settings)) as sandbox_server:
        settings = TEST_CREDENTIALS.service_settings(
            database_url,
            service.url,
            sandbox_server.url,
            key_ring_text,
            identity_headers=IdentityHeaders.TAILSCALE_SERVE,
            identity_proxy_ips=[PROXY_ADDRESS],
            console_admins=CONSOLE_ADMINS,
        )
        late.app = create_app(settings)
        with service:
            stack = ConsoleStack(service.url, sandbox_server.url, database_url, settings)
            try:
                yield stack
            finally:
                for standin in stack.standins.values():
                    standin.stop()


@pytest.fixture
async def console_api(console_stack: ConsoleStack) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``console_stack``'s tsprov API, reached directly (no identity)."""
    async with httpx.AsyncClient(base_url=console_stack.service_url, timeout=60) as client:
        yield client
