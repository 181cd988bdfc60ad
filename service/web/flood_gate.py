"""The flood gate in front of routing: a caller API request from a flooding source, with a
key this process has not seen work, gets its 429 before routing and dependencies run.

The dependency that authenticates callers (``web.deps``) makes the same decision; deciding
here first makes each refusal in a flood cost only this. A request let through counts
against its source's burst until its key proves good (``stop_counting``) or it ends.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.audit.events import ANONYMOUS, ORIGIN_API
from service.web.errors import RateLimited
from service.web.problem_pages import send_problem
from service.web.refusals import THROTTLED_KEY, Refusal, UnprovenInFlight, bearer_key

IN_FLIGHT_STATE = "tsprov_unproven_in_flight"


def stop_counting(scope: Scope) -> None:
    """The request's key proved good: it no longer counts against its source's burst."""
    counted = scope.get("state", {}).get(IN_FLIGHT_STATE)
    if isinstance(counted, UnprovenInFlight):
        counted.release()


class RefuseFloodsEarly:
    """Pure ASGI middleware: the early 429, and the in-flight count of what it lets through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        context = getattr(scope["app"].state, "context", None) if "app" in scope else None
        if scope["type"] != "http" or context is None or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        key = bearer_key(Headers(scope=scope).get("authorization", ""))
        source = scope["client"][0] if scope.get("client") else "unknown"
        guard = context.refusals
        if guard.throttled_before_lookup(
            source, key, counting_in_flight=True
        ) and not await guard.lookups_ahead_settle(source, key):
            refusal = Refusal(ANONYMOUS, scope["method"], scope["path"], THROTTLED_KEY, ORIGIN_API)
            try:
                await guard.refused(context.sessions, source, key, refusal, counting_in_flight=True)
            except RateLimited as limited:
                await send_problem(limited, send)
                return
            # The bucket refilled meanwhile: decide as usual.
        with guard.let_through(source, key) as counted:
            scope.setdefault("state", {})[IN_FLIGHT_STATE] = counted
            await self.app(scope, receive, send)
