"""A person at a browser: opens the consent link and, while the sandbox approves on its own
(its ``auto_approve`` switch), follows every redirect back to tsprov's result page."""

from __future__ import annotations

import threading
import time
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx


class _PostForm(HTMLParser):
    """The first POST form of a page: its action and its named inputs' values."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form" and self.action is None and (values.get("method") or "").lower() == "post":
            self.action, self._inside = values.get("action") or "", True
        elif tag in ("input", "button") and self._inside and values.get("name"):
            self.fields[str(values["name"])] = values.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def open_consent_link(url: str) -> httpx.Response:
    """Open ``url`` as a browser would; the final page's answer.

    Where tsprov shows a confirmation page before sending the person on to Tailscale, its
    form is submitted, as the person would press its button.
    """
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        page = browser.get(url)
        form = _PostForm()
        form.feed(page.text)
        if page.status_code == 200 and page.url.path == "/authorize" and form.action is not None:
            page = browser.post(urljoin(str(page.url), form.action), data=form.fields)
        return page


def open_consent_link_later(url: str, delay: float = 1.0) -> threading.Thread:
    """Open ``url`` from another thread after ``delay`` s, as a person a moment later."""

    def visit() -> None:
        time.sleep(delay)
        open_consent_link(url)

    thread = threading.Thread(target=visit, daemon=True)
    thread.start()
    return thread
