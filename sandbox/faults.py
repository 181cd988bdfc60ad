"""The outermost ASGI layer: fault injection and the request log."""

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.models import FaultRule
from sandbox.request_log import log_request, take_fault
from sandbox.route_names import route_name, route_selected
from sandbox.state import SandboxState

DRIP_CHUNKS = 10
_RANDOM = secrets.SystemRandom()


class ResponseDropped(ConnectionAbortedError):
    """Raised to the client when no server transport can be closed (an in-process client)."""


class _ClosableTransport(Protocol):
    def close(self) -> None: ...


@dataclass
class _Captured:
    status: int = 500
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _grant_type(body: bytes) -> str | None:
    values = parse_qs(body.decode("utf-8", "replace")).get("grant_type", [])
    return values[0] if len(values) == 1 else None


def _with_length(headers: list[tuple[bytes, bytes]], length: int) -> list[tuple[bytes, bytes]]:
    kept = [(name, value) for name, value in headers if name.lower() != b"content-length"]
    return [*kept, (b"content-length", str(length).encode())]


async def _send_response(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, drip: float
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if drip <= 0 or len(body) < 2:
        await send({"type": "http.response.body", "body": body, "more_body": False})
        return
    size = -(-len(body) // DRIP_CHUNKS)
    chunks = [body[start : start + size] for start in range(0, len(body), size)]
    for chunk in chunks:
        await asyncio.sleep(drip / len(chunks))
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _drop_connection(send: Send) -> None:
    # ASGI cannot drop a connection unanswered; uvicorn's send is bound to the cycle that owns
    # the transport, so closing that transport is the one way to lose a response faithfully.
    cycle = getattr(send, "__self__", None)
    transport: _ClosableTransport | None = getattr(cycle, "transport", None)
    if transport is None or not callable(getattr(transport, "close", None)):
        raise ResponseDropped("the sandbox dropped the response")
    transport.close()
    # Let the server notice the loss before the app returns, or it would answer 500 instead.
    for _ in range(100):
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0)


def _injected(rule: FaultRule, status: int) -> tuple[list[tuple[bytes, bytes]], bytes]:
    if rule.body is not None:
        body = rule.body.encode()
    else:
        body = json.dumps({"message": f"injected fault: HTTP {status}"}).encode()
    headers = [(b"content-type", b"application/json")]
    if rule.retry_after is not None:
        headers.append((b"retry-after", rule.retry_after.encode("latin-1")))
    return _with_length(headers, len(body)), body


def switched_latency(state: SandboxState, route: str, path: str) -> float:
    """Seconds the latency switch delays this request: uniform in its range, 0 when off."""
    with state.lock:
        latency = state.switches.latency
    if latency is None:
        return 0.0
    if latency.routes:
        if not any(route_selected(selector, route, path) for selector in latency.routes):
            return 0.0
    elif route == "join":
        # Joining is the device's own act, not an answer from Tailscale's API.
        return 0.0
    return _RANDOM.uniform(latency.min_seconds, latency.max_seconds)


class FaultLayer:
    """Applies fault rules to Tailscale-facing routes and logs every such request."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request, misbehaving as the first matching fault rule says."""
        route = route_name(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        grant_type = None
        if route == "token":
            body = await _read_body(receive)
            grant_type, receive = _grant_type(body), _replaying(body, receive)
        method, path = scope["method"], scope["path"]
        rule = take_fault(self.state, route, path, method, grant_type)
        outcome: list[int] = []
        delay = switched_latency(self.state, route, path)
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            await self._serve(rule, scope, receive, send, outcome)
        finally:
            status = outcome[0] if outcome else None
            log_request(
                self.state,
                method=method,
                path=path,
                route=route,
                grant_type=grant_type,
                status=status,
                fault=rule,
            )

    async def _serve(
        self, rule: FaultRule | None, scope: Scope, receive: Receive, send: Send, outcome: list[int]
    ) -> None:
        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome.append(message["status"])
            await send(message)

        if rule is not None and rule.latency_seconds > 0:
            await asyncio.sleep(rule.latency_seconds)
        if rule is not None and rule.status is not None:
            headers, body = _injected(rule, rule.status)
            outcome.append(rule.status)
            await _send_response(send, rule.status, headers, body, rule.drip_seconds)
            return
        if rule is None or not (rule.lost_response or rule.body is not None or rule.drip_seconds):
            await self.app(scope, receive, recording_send)
            return
        await self._serve_altered(rule, scope, receive, send, outcome)

    async def _serve_altered(
        self, rule: FaultRule, scope: Scope, receive: Receive, send: Send, outcome: list[int]
    ) -> None:
        captured = _Captured()

        async def capturing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured.status = message["status"]
                captured.headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                captured.body += message.get("body", b"")

        await self.app(scope, receive, capturing_send)
        if rule.lost_response:
            await _drop_connection(send)
            return
        body = rule.body.encode() if rule.body is not None else bytes(captured.body)
        outcome.append(captured.status)
        headers = _with_length(captured.headers, len(body))
        await _send_response(send, captured.status, headers, body, rule.drip_seconds)
