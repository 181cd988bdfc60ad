"""What the transport tells an observer about each call, named by endpoint template."""

from __future__ import annotations

from typing import Protocol

import httpx

# Path segments that follow these name one object; metrics must not get a label per object.
_ID_AFTER = {
    "tailnet": "{tailnet}",
    "device": "{deviceId}",
    "keys": "{keyId}",
    "oauth-apps": "{appId}",
}
API_PREFIX = "/api/v2/"


class CallObserver(Protocol):
    def upstream_call(self, endpoint: str, outcome: str, seconds: float) -> None: ...

    def upstream_retry(self, endpoint: str) -> None: ...


class NoObserver:
    """For clients nobody watches (CLI commands, tests of the transport alone)."""

    def upstream_call(self, endpoint: str, outcome: str, seconds: float) -> None:
        return None

    def upstream_retry(self, endpoint: str) -> None:
        return None


def endpoint_of(request: httpx.Request) -> str:
    """``POST /api/v2/tailnet/{tailnet}/keys`` for a key mint, whatever the tailnet or id."""
    path = request.url.path
    if not path.startswith(API_PREFIX):
        return f"{request.method} other"
    segments = path.removeprefix(API_PREFIX).split("/")
    named = [
        _ID_AFTER[segments[index - 1]] if index and segments[index - 1] in _ID_AFTER else segment
        for index, segment in enumerate(segments)
    ]
    return f"{request.method} {API_PREFIX}{'/'.join(named)}"
