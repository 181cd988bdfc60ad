"""Running the service under uvicorn: redacted access log, readiness dropped first on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging.config
import signal
import time
from types import FrameType

import uvicorn

from service.main import create_app
from service.ops.logs import logging_config
from service.ops.workers import WorkerSupervisor
from service.settings import Settings

# A terminal's Ctrl-C reaches a worker of ``--workers N`` twice: from the terminal, which
# signals the whole process group, and from the parent, which forwards it. uvicorn takes a
# second SIGINT as "quit without finishing", cancelling the shutdown with a traceback; one
# that follows the first this closely is the same Ctrl-C.
SAME_CTRL_C_SECONDS = 1.0


class DrainingServer(uvicorn.Server):
    """On SIGTERM, fail /readyz and keep serving ``drain_seconds`` before uvicorn drains."""

    def __init__(self, config: uvicorn.Config, drain_seconds: float = 0.0) -> None:
        super().__init__(config)
        self._drain_seconds = drain_seconds
        self._drain_until: float | None = None
        self._last_ctrl_c: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGINT:
            now = time.monotonic()
            if self._last_ctrl_c is not None and now - self._last_ctrl_c < SAME_CTRL_C_SECONDS:
                return
            self._last_ctrl_c = now
        app = getattr(self.config, "app", None)
        shared = getattr(getattr(app, "state", None), "context", None)
        if shared is not None:
            shared.draining = True
            # Long-polls answer once they see the drain; a signal handler may not touch the
            # loop's state directly, so the wake-up is handed to the loop.
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().call_soon_threadsafe(shared.notifier.wake_all)
        if sig == signal.SIGTERM and self._drain_until is None and self._drain_seconds > 0:
            # A load balancer sees the failing /readyz only at its next probe; closing the
            # port before then would refuse the requests it still sends here.
            self._drain_until = time.monotonic() + self._drain_seconds
            return
        # SIGINT, or a second SIGTERM: an operator wants out now.
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._drain_until is not None and time.monotonic() >= self._drain_until:
            self.should_exit = True
        return await super().on_tick(counter)


def uvicorn_config(settings: Settings, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_config=logging_config(log_format=settings.effective_log_format),
        # Applied by the app itself, after noting the TCP peer (service/web/forwarded.py).
        proxy_headers=False,
        timeout_graceful_shutdown=25,
    )


def serve(settings: Settings, *, host: str, port: int, workers: int = 1) -> int:
    """Run until stopped; the exit status for the CLI."""
    if workers > 1:
        logging.config.dictConfig(logging_config(log_format=settings.effective_log_format))
        return WorkerSupervisor(host, port, workers).run()
    DrainingServer(uvicorn_config(settings, host, port), settings.shutdown_drain_seconds).run()
    return 0
