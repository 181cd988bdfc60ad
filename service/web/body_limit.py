"""Request bodies bounded in size and time before any route, parser or query sees them.

FastAPI reads and parses a body before a route's dependencies run, so the caller's key is
checked only after the whole body is in memory. This middleware reads it first, whole, with
a byte cap (Content-Length or not, chunked or not) and a deadline for its arrival, and
hands the route the bytes it already holds. Bodies here are small JSON documents, so holding
one costs at most ``max_bytes``.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.web.errors import BodyTooSlow, PayloadTooLarge, ProblemError
from service.web.pages import render_page
from service.web.problem_pages import is_browser_path, problem_response


class _BodyRefused(Exception):
    def __init__(self, problem: ProblemError) -> None:
        super().__init__(problem.detail)
        self.problem = problem


class BoundedBody:
    """Pure ASGI middleware: 413 past ``max_bytes``, 408 when the body is not in by ``timeout``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not _may_carry_body(scope):
            # Nothing to bound or wait for: most requests (every GET, every refused key in a
            # flood) pass without the reading and the timer.
            await self.app(scope, receive, send)
            return
        try:
            self._check_declared_length(scope)
            body = await self._read_body(receive)
        except _BodyRefused as refused:
            await self._answer(scope, receive, send, refused.problem)
            return
        await self.app(scope, _replaying(body, receive), send)

    def _check_declared_length(self, scope: Scope) -> None:
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                raise _BodyRefused(self._too_large())

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.timeout_seconds):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        break  # the client went away; the route sees an empty body
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise _BodyRefused(self._too_large())
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            detail = f"The request body must arrive within {self.timeout_seconds:g} seconds."
            raise _BodyRefused(BodyTooSlow(detail)) from None
        return b"".join(chunks)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"Request bodies are limited to {self.max_bytes} bytes.")

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, error: ProblemError
    ) -> None:
        # The rest of the body is never read, so the connection cannot be reused.
        error.headers["Connection"] = "close"
        if is_browser_path(scope.get("path", "")):
            page = render_page(error.status, error.title, error.detail)
            page.headers["Connection"] = "close"
            await page(scope, receive, send)
            return
        await problem_response(error)(scope, receive, send)


def _may_carry_body(scope: Scope) -> bool:
    """Whether the request announces a body: an HTTP/1.1 request with neither Content-Length
    nor Transfer-Encoding has none (RFC 9112 §6.3), and its server reads none."""
    return any(name in (b"content-length", b"transfer-encoding") for name, _ in scope["headers"])


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the held body once, then passes through (to see a disconnect)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
