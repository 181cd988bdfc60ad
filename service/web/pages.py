"""Plain HTML pages for people: no scripts, no third-party assets, nothing to leak."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Literal

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
.bad{{color:#cf222e}} .plain{{color:#1f2328}} .ask{{color:#0969da}}
h2{{font-size:1rem;margin:1.25rem 0 .25rem}}
code{{font:14px ui-monospace,monospace;background:#f6f7f9;padding:0 .2rem;border-radius:4px}}
dl{{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:1rem 0}}
dt{{color:#59636e}} dd{{margin:0;word-break:break-word}}
button{{font:inherit;padding:.6rem 1.2rem;border:0;border-radius:8px;background:#0969da;
color:#fff;cursor:pointer}} button:focus{{outline:3px solid #54aeff;outline-offset:2px}}
</style></head>
<body><main><h1 class="{tone}">{title}</h1>{paragraphs}</main></body></html>
"""
Tone = Literal["ok", "bad", "plain", "ask"]


@dataclass(frozen=True)
class PageForm:
    """One POST button; ``fields`` go along as hidden inputs."""

    action: str
    button: str
    fields: dict[str, str]
    # Where the POST's answer may redirect to: CSP form-action also governs redirects.
    redirect_origins: tuple[str, ...] = ()


def render_page(
    status: int,
    title: str,
    message: str,
    *more: str,
    tone: Tone | None = None,
    facts: Sequence[tuple[str, str]] = (),
    form: PageForm | None = None,
) -> HTMLResponse:
    """A page of paragraphs, then facts and a button when given; the title is green for
    success, red for a failure."""
    chosen = tone or ("ok" if status < 400 else "bad")
    paragraphs = "".join(f"<p>{escape(text)}</p>" for text in (message, *more))
    paragraphs += _facts_html(facts) + (_form_html(form) if form else "")
    body = _TEMPLATE.format(title=escape(title), paragraphs=paragraphs, tone=chosen)
    headers = dict(BROWSER_HEADERS)
    if form is not None and form.redirect_origins:
        targets = " ".join(form.redirect_origins)
        headers["Content-Security-Policy"] = headers["Content-Security-Policy"].replace(
            "form-action 'self'", f"form-action 'self' {targets}"
        )
    return HTMLResponse(body, status_code=status, headers=headers)


def render_sections(status: int, title: str, sections: dict[str, str]) -> HTMLResponse:
    """A reference page: a neutral title, then headed paragraphs."""
    paragraphs = "".join(
        f"<h2>{escape(heading)}</h2><p>{escape(text)}</p>" for heading, text in sections.items()
    )
    body = _TEMPLATE.format(title=escape(title), paragraphs=paragraphs, tone="plain")
    return HTMLResponse(body, status_code=status, headers=BROWSER_HEADERS)


def _facts_html(facts: Sequence[tuple[str, str]]) -> str:
    if not facts:
        return ""
    rows = "".join(f"<dt>{escape(name)}</dt><dd>{escape(value)}</dd>" for name, value in facts)
    return f"<dl>{rows}</dl>"


def _form_html(form: PageForm) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in form.fields.items()
    )
    return (
        f'<form method="post" action="{escape(form.action)}">{hidden}'
        f'<button type="submit">{escape(form.button)}</button></form>'
    )


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
