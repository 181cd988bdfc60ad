"""Run the sandbox and the service together in one process, stopping both on Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import signal
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from devstack.log_labels import COMPONENT


class QuietSignalServer(uvicorn.Server):
    """A server that leaves signals to the stack, so one Ctrl-C stops every server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def make_server(app: ASGIApp, port: int, log_config: dict[str, Any] | None) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=log_config,
        log_level="info",
        # As `tsprov serve`: the app handles X-Forwarded-For itself (service/web/forwarded.py).
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )
    return QuietSignalServer(config)


STARTUP_LIMIT_SECONDS = 30


async def wait_started(servers: list[uvicorn.Server]) -> None:
    # uvicorn exposes only a `started` flag, no event to await, so poll it briefly.
    async with asyncio.timeout(STARTUP_LIMIT_SECONDS):
        while not all(server.started for server in servers):  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def _labelled(component: str) -> contextvars.Context:
    """A context whose log lines, and those of every task started in it, name ``component``."""
    context = contextvars.copy_context()
    context.run(COMPONENT.set, component)
    return context


async def serve_together(servers: dict[str, uvicorn.Server], on_started: object) -> None:
    """Serve until SIGINT/SIGTERM; ``on_started`` (a coroutine function) runs once all listen.

    ``servers`` are keyed by the component name their log lines carry.
    """
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers.values():
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    tasks = [
        asyncio.create_task(server.serve(), context=_labelled(name))
        for name, server in servers.items()
    ]
    try:
        await wait_started(list(servers.values()))
        await on_started()  # type: ignore[operator]
        await asyncio.gather(*tasks)
    finally:
        stop()
        await asyncio.gather(*tasks, return_exceptions=True)
