"""The processes under test: the sandbox, tsprov replicas and the floor, on loopback ports.

Each is started the way an operator starts it (``tsprov sandbox``, ``tsprov serve``,
``python -m benchmarks.floor_app``), with its settings in the environment and its output
in a log file under the run's log directory.
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.database import asyncpg_url
from benchmarks.servers import (
    Server,
    clean_environment,
    free_port,
    start_server,
    tsprov_command,
    wait_ready,
)
from benchmarks.tsprov_hooks import generate_key_entry, generate_signing_key

# The sandbox approves every consent at once as this tailnet user.
CONSENTING_LOGIN = "alice@example.com"
REUSABLE_SCOPE = "auth_keys:create"
# The token response names the consenting login here, so production's identity binding can
# confirm it before a key goes out.
IDENTITY_FIELD = "consenting_login"


@dataclass(frozen=True)
class Credentials:
    """The sandbox's OAuth app as tsprov knows it, and tsprov's key ring; new for each run."""

    app_id: str = field(default_factory=lambda: "kBench" + secrets.token_hex(5))
    app_secret: str = field(default_factory=lambda: "tskey-app-" + secrets.token_urlsafe(24))
    admin_token: str = field(default_factory=lambda: "tskey-api-" + secrets.token_urlsafe(24))
    encryption_keys: str = field(default_factory=lambda: generate_key_entry("bench1"))
    # Production refuses to start without one: the audit chain's heads are signed.
    audit_signing_key: str = field(default_factory=generate_signing_key)


@dataclass
class Stack:
    tsprov_database: str
    floor_database: str
    workers: int
    log_dir: Path
    credentials: Credentials = field(default_factory=Credentials)
    sandbox_port: int = field(default_factory=free_port)
    # Two tsprov replicas on one database; the second runs only for the refresh storm.
    tsprov_ports: tuple[int, int] = field(default_factory=lambda: (free_port(), free_port()))
    floor_port: int = field(default_factory=free_port)
    servers: dict[str, Server] = field(default_factory=dict)
    # What ``tsprov serve`` connects as, once the app role exists; the owner's URL until then.
    tsprov_serving_database: str = ""

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def floor_callback(self) -> str:
        """Registered with the sandbox so the harness can fetch the floor's grant."""
        return f"http://127.0.0.1:{self.floor_port}/callback"

    def sandbox_environment(self) -> dict[str, str]:
        callbacks = [f"http://127.0.0.1:{port}/callback" for port in self.tsprov_ports]
        return clean_environment(
            TSPROV_SANDBOX_APP_CLIENT_ID=self.credentials.app_id,
            TSPROV_SANDBOX_APP_CLIENT_SECRET=self.credentials.app_secret,
            TSPROV_SANDBOX_ADMIN_TOKEN=self.credentials.admin_token,
            TSPROV_SANDBOX_APP_REDIRECT_URIS=",".join([*callbacks, self.floor_callback]),
            TSPROV_SANDBOX_GRANT_MODE="reusable",
            TSPROV_SANDBOX_AUTO_APPROVE=CONSENTING_LOGIN,
            TSPROV_SANDBOX_IDENTITY_FIELD=IDENTITY_FIELD,
        )

    def tsprov_environment(self, port: int) -> dict[str, str]:
        """Production settings (refusing sample secrets), talking to the sandbox."""
        return clean_environment(
            TSPROV_ENV="production",
            TSPROV_DATABASE_URL=self.tsprov_serving_database or self.tsprov_database,
            TSPROV_PUBLIC_URL=f"http://127.0.0.1:{port}",
            TSPROV_TAILSCALE_LOGIN_URL=self.sandbox_url,
            TSPROV_TAILSCALE_API_URL=self.sandbox_url,
            TSPROV_TAILSCALE_ISSUER=self.sandbox_url,
            TSPROV_OAUTH_CLIENT_ID=self.credentials.app_id,
            TSPROV_OAUTH_CLIENT_SECRET=self.credentials.app_secret,
            TSPROV_OAUTH_SCOPE=REUSABLE_SCOPE,
            TSPROV_ENCRYPTION_KEYS=self.credentials.encryption_keys,
            TSPROV_AUDIT_SIGNING_KEY=self.credentials.audit_signing_key,
            TSPROV_TOKEN_LOGIN_FIELD=IDENTITY_FIELD,
        )

    def start_sandbox(self) -> Server:
        command = [tsprov_command(), "sandbox", "--port", str(self.sandbox_port)]
        server = self._start("sandbox", command, self.sandbox_environment(), self.sandbox_port)
        wait_ready(server, "/sandbox/health")
        return server

    def start_tsprov(self, replica: int) -> Server:
        port = self.tsprov_ports[replica]
        command = [tsprov_command(), "serve", "--port", str(port), "--workers", str(self.workers)]
        name = f"tsprov-{'ab'[replica]}"
        server = self._start(name, command, self.tsprov_environment(port), port)
        wait_ready(server, "/readyz")
        return server

    def start_floor(self, access_token: str) -> Server:
        port = self.floor_port
        command = [sys.executable, "-m", "benchmarks.floor_app", "--port", str(port),
                   "--workers", str(self.workers)]  # fmt: skip
        environment = clean_environment(
            FLOOR_DATABASE_URL=asyncpg_url(self.floor_database),
            FLOOR_SANDBOX_URL=self.sandbox_url,
            FLOOR_ACCESS_TOKEN=access_token,
        )
        server = self._start("floor", command, environment, port)
        wait_ready(server, "/healthz")
        return server

    def _start(
        self, name: str, command: list[str], environment: dict[str, str], port: int
    ) -> Server:
        server = start_server(name, command, environment, port, self.log_dir)
        self.servers[name] = server
        return server

    def stop(self, name: str) -> None:
        server = self.servers.pop(name, None)
        if server is not None:
            server.stop()

    def stop_all(self) -> None:
        for name in list(self.servers):
            self.stop(name)
