"""Run the sandbox and the service together in one process, stopping both on Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI


class QuietSignalServer(uvicorn.Server):
    """A server that leaves signals to the stack, so one Ctrl-C stops every server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def make_server(app: FastAPI, port: int, log_config: dict[str, object] | None) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=log_config,
        log_level="info",
        timeout_graceful_shutdown=5,
    )
    return QuietSignalServer(config)


STARTUP_LIMIT_SECONDS = 30


async def wait_started(servers: list[uvicorn.Server]) -> None:
    # uvicorn exposes only a `started` flag, no event to await, so poll it briefly.
    async with asyncio.timeout(STARTUP_LIMIT_SECONDS):
        while not all(server.started for server in servers):  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def serve_together(servers: list[uvicorn.Server], on_started: object) -> None:
    """Serve until SIGINT/SIGTERM; ``on_started`` (a coroutine function) runs once all listen."""
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    try:
        await wait_started(servers)
        await on_started()  # type: ignore[operator]
        await asyncio.gather(*tasks)
    finally:
        stop()
        await asyncio.gather(*tasks, return_exceptions=True)
