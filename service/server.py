"""Running the service under uvicorn: redacted access log, readiness dropped first on SIGTERM."""

from __future__ import annotations

from types import FrameType

import uvicorn

from service.logs import logging_config
from service.main import create_app
from service.settings import Settings


class DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT, turn /readyz off before uvicorn stops accepting and drains."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        app = getattr(self.config, "app", None)
        shared = getattr(getattr(app, "state", None), "context", None)
        if shared is not None:
            shared.draining = True
        super().handle_exit(sig, frame)


def uvicorn_config(settings: Settings, host: str, port: int, workers: int = 1) -> uvicorn.Config:
    if workers > 1:
        return uvicorn.Config(
            "service.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=logging_config(),
            proxy_headers=True,
            timeout_graceful_shutdown=25,
        )
    return uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_config=logging_config(),
        proxy_headers=True,
        timeout_graceful_shutdown=25,
    )


def serve(settings: Settings, *, host: str, port: int, workers: int = 1) -> None:
    config = uvicorn_config(settings, host, port, workers)
    if workers > 1:
        uvicorn.Server(config).run()
        return
    DrainingServer(config).run()
