"""What every HTTP request leaves behind: a request id, one access line, its metrics."""

from __future__ import annotations

import logging
import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.audit.events import event_group
from service.ops.logs import redact_query
from service.ops.request_id import HEADER, accept_or_generate, request_scope
from service.state import AppContext

access_log = logging.getLogger("tsprov.access")


class ObserveRequests:
    """Pure ASGI middleware: one request id and one eventGroupID per request; metrics by route
    template, never path.

    Pure ASGI rather than ``BaseHTTPMiddleware``, which runs the app in a task of its own and
    passes the response through a stream: every hop is another turn of the event loop, and
    under load (a flood of refusals, say) each turn waits behind everything else queued.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._observe(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _observe(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = accept_or_generate(Headers(scope=scope).get(HEADER))
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        with request_scope(request_id), event_group():
            # An exception leaves without an access line: ServerErrorMiddleware, outside,
            # answers 500 and logs it.
            await self.app(scope, receive, send_with_id)
            _record(scope, status, time.perf_counter() - started)


def _record(scope: Scope, status: int, elapsed: float) -> None:
    route = getattr(scope.get("route"), "path", "unmatched")
    method = scope["method"]
    app = scope.get("app")
    context: AppContext | None = getattr(getattr(app, "state", None), "context", None)
    if context is not None:
        context.metrics.observe_request(route, method, status, elapsed)
    access_log.info(
        "%s %s %d",
        method,
        route,
        status,
        extra={
            "method": method,
            "route": route,
            "path": redact_query(scope["path"]),
            "status": status,
            "duration_ms": round(elapsed * 1000, 3),
        },
    )
