"""Small steps the security tests share: read the sandbox's request log, rewrite a query."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx


async def code_exchanges(sandbox: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every authorization-code redemption the sandbox's token endpoint has seen."""
    log = await sandbox.get("/sandbox/requests", params={"grant_type": "authorization_code"})
    requests: list[dict[str, Any]] = log.json()["requests"]
    return requests


async def upstream_calls(sandbox: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every Tailscale-facing request the sandbox has seen since its last reset."""
    requests: list[dict[str, Any]] = (await sandbox.get("/sandbox/requests")).json()["requests"]
    return requests


def with_query(url: str, **changes: str) -> str:
    """``url`` with some query parameters replaced or added, the others kept in order."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))
