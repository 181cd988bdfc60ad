"""Rendering the console's pages: Jinja2 templates from this package, under a strict CSP.

``render(request, "name.html", status=..., **values)`` fills ``templates/name.html`` (which
extends ``base.html``) and sends it with ``CONSOLE_HEADERS``; every page gets ``person``
(or None) and ``csrf_token`` for its forms. ``message_page`` is a plain page of paragraphs;
raising ``ConsolePageError`` anywhere in a console route answers one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from service.console import csrf
from service.console.errors import ConsolePageError, Tone
from service.console.identity import signed_in_person
from service.web.pages import BROWSER_HEADERS

PACKAGE = Path(__file__).resolve().parent
# Only what the package serves itself: its stylesheet, its images. No inline style or
# script at all, so an injected tag in a page could not run or restyle it.
CONSOLE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
CONSOLE_HEADERS = {**BROWSER_HEADERS, "Content-Security-Policy": CONSOLE_POLICY}
# Autoescape everywhere (not only in .html), and a misspelt name fails loudly in the tests
# instead of rendering as nothing.
templates = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(PACKAGE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
    )
)


def when(moment: datetime | None) -> str:
    """A time as pages show it: UTC to the minute, or a dash."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


templates.env.filters["when"] = when


def render(request: Request, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
    """A console page; sets the browser's CSRF cookie when it has none yet."""
    person = signed_in_person(request)
    secret, fresh = csrf.browser_secret(request)
    token = csrf.form_token(secret, person.login) if person else ""
    response = templates.TemplateResponse(
        request,
        template,
        {"person": person, "csrf_token": token, **values},
        status_code=status,
        headers=CONSOLE_HEADERS,
    )
    if fresh:
        csrf.set_secret_cookie(request, response, secret)
    return response


def message_page(
    request: Request,
    status: int,
    title: str,
    *paragraphs: str,
    tone: Tone | None = None,
    facts: Sequence[tuple[str, str]] = (),
    back: tuple[str, str] | None = None,
) -> HTMLResponse:
    """A page of paragraphs, optional facts, and a link back (href, text)."""
    chosen = tone or ("ok" if status < 400 else "bad")
    return render(
        request,
        "message.html",
        status=status,
        title=title,
        tone=chosen,
        paragraphs=paragraphs,
        facts=facts,
        back=back,
    )


async def on_console_page_error(request: Request, exc: Exception) -> HTMLResponse:
    error = cast(ConsolePageError, exc)  # registered for this class only
    return message_page(request, error.status, error.title, *error.paragraphs, tone=error.tone)
