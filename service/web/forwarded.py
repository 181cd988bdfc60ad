"""The TCP peer, noted before X-Forwarded-For may name the client in its place.

uvicorn's proxy-headers handling replaces ``scope["client"]`` with the X-Forwarded-For
address when the peer is a trusted forwarder, and keeps nothing of the peer itself. Behind
``tailscale serve`` (which connects from loopback and sets X-Forwarded-For to the tailnet
client's address) the identity headers must be judged by the peer, never by a header a
client can write. So tsprov serves with uvicorn's handling off and applies the very same
middleware here, right after noting the peer: ``request.client`` still names the client
for throttling and logs, and ``tcp_peer`` names the connection.
"""

from __future__ import annotations

import os

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

PEER_KEY = "tsprov.peer"


class KeepPeer:
    """Pure ASGI middleware: note the TCP peer, then honour X-Forwarded-For as uvicorn does."""

    def __init__(self, app: ASGIApp) -> None:
        # FORWARDED_ALLOW_IPS is the variable uvicorn itself reads: an operator's setting keeps
        # its meaning now that the handling happens here.
        trusted = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
        self.app = ProxyHeadersMiddleware(app, trusted_hosts=trusted)  # type: ignore[arg-type]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope[PEER_KEY] = scope.get("client")
        await self.app(scope, receive, send)  # type: ignore[arg-type]


def tcp_peer(scope: Scope) -> str | None:
    """The address of the connection the request came on, whatever X-Forwarded-For says."""
    peer = scope[PEER_KEY] if PEER_KEY in scope else scope.get("client")
    return peer[0] if peer else None
