"""Plain HTML pages for people: no scripts, no third-party assets, nothing to leak."""

from __future__ import annotations

from html import escape
from typing import Literal

from fastapi.responses import HTMLResponse

BROWSER_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
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
.bad{{color:#cf222e}} .plain{{color:#1f2328}} h2{{font-size:1rem;margin:1.25rem 0 .25rem}}
code{{font:14px ui-monospace,monospace;background:#f6f7f9;padding:0 .2rem;border-radius:4px}}
</style></head>
<body><main><h1 class="{tone}">{title}</h1>{paragraphs}</main></body></html>
"""
Tone = Literal["ok", "bad", "plain"]


def render_page(
    status: int, title: str, message: str, *more: str, tone: Tone | None = None
) -> HTMLResponse:
    """A page of paragraphs; the title is green for success, red for a failure."""
    chosen = tone or ("ok" if status < 400 else "bad")
    paragraphs = "".join(f"<p>{escape(text)}</p>" for text in (message, *more))
    body = _TEMPLATE.format(title=escape(title), paragraphs=paragraphs, tone=chosen)
    return HTMLResponse(body, status_code=status, headers=BROWSER_HEADERS)


def render_sections(status: int, title: str, sections: dict[str, str]) -> HTMLResponse:
    """A reference page: a neutral title, then headed paragraphs."""
    paragraphs = "".join(
        f"<h2>{escape(heading)}</h2><p>{escape(text)}</p>" for heading, text in sections.items()
    )
    body = _TEMPLATE.format(title=escape(title), paragraphs=paragraphs, tone="plain")
    return HTMLResponse(body, status_code=status, headers=BROWSER_HEADERS)
