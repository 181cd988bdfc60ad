"""No page tsprov serves may be framed (clickjacking), and its own pages load nothing."""

from __future__ import annotations

import httpx

PAGES = ("/done", "/authorize?request=unknown", "/callback", "/docs", "/redoc", "/no-such-page")


async def test_every_page_forbids_framing(client: httpx.AsyncClient) -> None:
    for path in PAGES:
        answer = await client.get(path)
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy, path
        assert answer.headers["x-frame-options"] == "DENY", path


async def test_tsprovs_own_pages_load_nothing_from_anywhere(client: httpx.AsyncClient) -> None:
    for path in ("/done", "/authorize?request=unknown", "/callback"):
        policy = (await client.get(path)).headers["content-security-policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["default-src"] == "'none'", path
        assert directives["base-uri"] == "'none'", path
        assert directives["form-action"] == "'self'", path
