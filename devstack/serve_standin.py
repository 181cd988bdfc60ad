"""A stand-in for ``tailscale serve``: forwards to tsprov and says who is asking.

Like Serve, it connects to tsprov from loopback and adds ``Tailscale-User-Login``,
``Tailscale-User-Name`` and ``Tailscale-User-Profile-Pic`` — here for one chosen dev login,
where Serve names the tailnet user whose device sent the request. Identity headers a
browser sends itself are dropped first, as the headers must only ever be the proxy's.
Used by ``tsprov dev --as LOGIN`` and by the tests (tests/helpers/serve_standin.py).
"""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

# Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection, not to the message; and the
# body is passed on decoded, so no encoding is asked for or announced.
NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
        "content-encoding",
    }
)
IDENTITY_PREFIX = "tailscale-user-"


def display_name(login: str) -> str:
    """``alice.smith@example.com`` → ``Alice Smith``: what a dev login stands for."""
    local = login.split("@", 1)[0]
    words = local.replace(".", " ").replace("_", " ").replace("-", " ").split()
    return " ".join(word.capitalize() for word in words) or login


class ServeStandIn:
    """An ASGI app forwarding every request to ``upstream`` as ``login``."""

    def __init__(self, upstream: str, login: str, *, source_address: str | None = None) -> None:
        """``source_address``: the loopback address to connect from (tests trust only it)."""
        self.upstream = upstream.rstrip("/")
        self.login = login
        # Long-polls wait up to a minute on tsprov's side; the read timeout leaves room.
        self.client = httpx.AsyncClient(
            base_url=self.upstream,
            timeout=httpx.Timeout(90.0, connect=5.0),
            transport=httpx.AsyncHTTPTransport(local_address=source_address),
        )

    def identity(self) -> list[tuple[str, str]]:
        return [
            ("Tailscale-User-Login", self.login),
            ("Tailscale-User-Name", display_name(self.login)),
            ("Tailscale-User-Profile-Pic", ""),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        headers = [
            (name, value)
            for name, value in request.headers.items()
            if name not in NOT_FORWARDED and not name.startswith(IDENTITY_PREFIX)
        ]
        upstream = await self.client.request(
            request.method,
            request.url.path,
            params=request.url.query,
            headers=headers + self.identity(),
            content=await request.body(),
        )
        response = Response(upstream.content, status_code=upstream.status_code)
        response.raw_headers = [
            *[
                (name, value)
                for name, value in upstream.headers.raw
                if name.decode("latin-1").lower() not in NOT_FORWARDED
            ],
            (b"content-length", str(len(upstream.content)).encode()),
        ]
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return
