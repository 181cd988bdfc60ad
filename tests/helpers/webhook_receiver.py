"""A webhook receiver on 127.0.0.1: records every POST, answers a planned status, and can
wait (asynchronously) for what it expects."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tests.helpers.servers import ThreadedServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ReceiverApp:
    """``statuses`` are answered in turn, then 204 for ever; a 3xx redirects to /elsewhere."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        with self.lock:
            self.received.append(
                Received(request.url.path, dict(request.headers), body, time.monotonic())
            )
            status = self.statuses.pop(0) if self.statuses else 204
        headers = {"location": "/elsewhere"} if 300 <= status < 400 else None
        await Response(status_code=status, headers=headers)(scope, receive, send)

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.received)


class WebhookReceiver:
    """``with WebhookReceiver() as receiver:``, then ``receiver.url`` and ``wait_for``."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.app = ReceiverApp(list(statuses or []))
        self._server = ThreadedServer(self.app, lifespan="off")

    @property
    def url(self) -> str:
        return f"{self._server.url}/hooks"

    def __enter__(self) -> WebhookReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def matching(self, wanted: Callable[[Received], bool]) -> list[Received]:
        return [item for item in self.app.snapshot() if wanted(item)]

    async def wait_for(
        self, wanted: Callable[[Received], bool], count: int = 1, within: float = 20.0
    ) -> list[Received]:
        """The first ``count`` deliveries ``wanted`` accepts; fails after ``within`` seconds."""
        deadline = time.monotonic() + within
        while len(found := self.matching(wanted)) < count:
            assert time.monotonic() < deadline, f"{len(found)} of {count} webhooks arrived"
            await asyncio.sleep(0.02)
        return found[:count]


def about_request(request_id: str, event_type: str) -> Callable[[Received], bool]:
    """Accepts the ``event_type`` webhook of one provisioning request."""

    def wanted(item: Received) -> bool:
        body = item.json()
        return bool(
            body["type"] == event_type and body["data"]["provisioning_request_id"] == request_id
        )

    return wanted
