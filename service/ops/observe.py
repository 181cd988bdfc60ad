"""What every HTTP request leaves behind: a request id, one access line, its metrics.

A plain ASGI middleware: Starlette's ``@app.middleware("http")`` runs the rest of the app in
a task of its own with memory streams in between, which cost more per request than all of
this does.
"""

from __future__ import annotations

import logging
import time

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.audit.events import event_group
from service.ops.logs import redact_query
from service.ops.request_id import HEADER, accept_or_generate, request_scope
from service.state import AppContext

access_log = logging.getLogger("tsprov.access")


class ObserveRequests:
    """One request id and one eventGroupID per request; metrics by route template, never path.

    The access line and the metrics are written when the response starts, as its status is
    known then; a streamed body (an export, a long-poll's answer) is not counted in the time.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request = Request(scope)
        request_id = accept_or_generate(request.headers.get(HEADER))

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
                _observe(request, message["status"], time.perf_counter() - started)
            await send(message)

        with request_scope(request_id), event_group():
            await self.app(scope, receive, send_observed)


def _observe(request: Request, status: int, elapsed: float) -> None:
    route = getattr(request.scope.get("route"), "path", "unmatched")
    context: AppContext | None = getattr(request.app.state, "context", None)
    if context is not None:
        context.metrics.observe_request(route, request.method, status, elapsed)
    access_log.info(
        "%s %s %d",
        request.method,
        route,
        status,
        extra={
            "method": request.method,
            "route": route,
            "path": redact_query(request.url.path),
            "status": status,
            "duration_ms": round(elapsed * 1000, 3),
        },
    )
