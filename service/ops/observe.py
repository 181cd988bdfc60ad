"""What every HTTP request leaves behind: a request id, one access line, its metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response

from service.audit.events import event_group
from service.ops.logs import redact_query
from service.ops.request_id import HEADER, accept_or_generate, request_scope
from service.state import AppContext

access_log = logging.getLogger("tsprov.access")


async def observe_request(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """One request id and one eventGroupID per request; metrics by route template, never path."""
    started = time.perf_counter()
    request_id = accept_or_generate(request.headers.get(HEADER))
    with request_scope(request_id), event_group():
        response = await call_next(request)
        response.headers[HEADER] = request_id
        route = getattr(request.scope.get("route"), "path", "unmatched")
        elapsed = time.perf_counter() - started
        context: AppContext | None = getattr(request.app.state, "context", None)
        if context is not None:
            context.metrics.observe_request(route, request.method, response.status_code, elapsed)
        access_log.info(
            "%s %s %d",
            request.method,
            route,
            response.status_code,
            extra={
                "method": request.method,
                "route": route,
                "path": redact_query(request.url.path),
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 3),
            },
        )
    return response
