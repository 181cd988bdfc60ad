"""Plain HTML pages for people: no scripts, no third-party assets, nothing to leak."""

from __future__ import annotations

from html import escape

from fastapi.responses import HTMLResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# No framing anywhere (clickjacking a consent page), and pages that can load, post to, or be
# based on nothing but what they carry inline.
FRAME_POLICY = "frame-ancestors 'none'"
PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; "
    + FRAME_POLICY
)
BROWSER_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": PAGE_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title} · tsprov</title>
<style>
body{{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1f2328}}
main{{max-width:34rem;margin:12vh auto;padding:2rem;background:#fff;border-radius:12px;
box-shadow:0 1px 3px rgba(0,0,0,.12)}}
h1{{font-size:1.4rem;margin:0 0 .75rem}} p{{margin:.5rem 0}} .ok{{color:#1a7f37}}
.bad{{color:#cf222e}}
</style></head>
<body><main><h1 class="{tone}">{title}</h1><p>{message}</p></main></body></html>
"""


def render_page(status: int, title: str, message: str) -> HTMLResponse:
    tone = "ok" if status < 400 else "bad"
    body = _TEMPLATE.format(title=escape(title), message=escape(message), tone=tone)
    return HTMLResponse(body, status_code=status, headers=BROWSER_HEADERS)


class FrameGuard:
    """Pure ASGI middleware: every answer that sets no policy of its own may not be framed.

    The documentation pages (``/docs``, ``/redoc``) are FastAPI's; this covers them too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = FRAME_POLICY
                headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, send_guarded)
