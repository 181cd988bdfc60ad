"""Serving over real HTTP for integration tests: any ASGI app from a background thread, or
tsprov as the `tsprov serve` process operators run."""

import os
import socket
import threading
import time
from types import TracebackType
from typing import Literal

import uvicorn
from pydantic import SecretStr
from starlette.types import ASGIApp

from service.settings import Settings

# The settings a `tsprov serve` process under test takes over from the in-process ones.
SERVE_SETTINGS = (
    "database_url",
    "tailscale_login_url",
    "tailscale_api_url",
    "tailscale_issuer",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scope",
    "observer_client_id",
    "observer_client_secret",
    "encryption_keys",
    "upstream_deadline_seconds",
    "shutdown_drain_seconds",
)


def free_port() -> int:
    """A loopback port nothing listens on now (a process started next may bind it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def serve_environment(settings: Settings, public_url: str) -> dict[str, str]:
    """What an operator sets for `tsprov serve`: TSPROV_* variables, none inherited."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("TSPROV_")
    }
    environment.update(TSPROV_ENV="development", TSPROV_PUBLIC_URL=public_url)
    for name in SERVE_SETTINGS:
        value = getattr(settings, name)
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        environment[f"TSPROV_{name.upper()}"] = text
    return environment


class ThreadedServer:
    """Runs uvicorn in a daemon thread on a free loopback port until `stop()`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        startup_timeout: float = 10.0,
        lifespan: Literal["auto", "on", "off"] = "auto",
    ) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Binding port 0 here, and handing the socket over, leaves no window for a port race.
        self._socket.bind((host, 0))
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        self._startup_timeout = startup_timeout
        # As `tsprov serve` runs: tsprov handles X-Forwarded-For itself, after noting the peer.
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan=lifespan,
            timeout_graceful_shutdown=2,
            proxy_headers=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> "ThreadedServer":
        """Start serving; return once uvicorn accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the server thread exited during start-up")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start within {self._startup_timeout} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> "ThreadedServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
