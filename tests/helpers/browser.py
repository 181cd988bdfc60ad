"""A cookie-keeping HTTP "browser" that walks the consent flow the way a person's would."""

from __future__ import annotations

import re
from html import unescape
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

import httpx

_HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


class Browser:
    """Follows no redirect by itself, so tests can look at every hop."""

    def __init__(self, sandbox_url: str) -> None:
        self.sandbox_url = sandbox_url
        self.client = httpx.AsyncClient(follow_redirects=False, timeout=30)

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.client.aclose()

    async def get(self, url: str) -> httpx.Response:
        return await self.client.get(url)

    async def confirm_consent(self, consent_url: str) -> httpx.Response:
        return await confirm_consent(self.client, consent_url)

    async def open_consent(self, consent_url: str) -> str:
        """Open the link and continue; returns Tailscale's (the sandbox's) authorize URL."""
        response = await self.confirm_consent(consent_url)
        assert response.status_code == 303, response.text
        return response.headers["location"]

    async def decide(self, authorize_url: str, login: str, decision: str = "approve") -> str:
        """Choose on the consent screen; returns the callback URL Tailscale redirects to."""
        page = await self.client.get(authorize_url)
        assert page.status_code == 200, page.text
        form = {name: unescape(value) for name, value in _HIDDEN_INPUT.findall(page.text)}
        form.update(login=login, decision=decision)
        answer = await self.client.post(f"{self.sandbox_url}/a/oauth_authorize", data=form)
        assert answer.status_code == 302, answer.text
        return answer.headers["location"]

    async def consent(
        self, consent_url: str, login: str, decision: str = "approve"
    ) -> httpx.Response:
        """The whole walk: link → consent screen → callback; returns the callback's answer."""
        callback_url = await self.decide(await self.open_consent(consent_url), login, decision)
        return await self.client.get(callback_url)


async def confirm_consent(client: httpx.AsyncClient, consent_url: str) -> httpx.Response:
    """Open the link and press "Continue to Tailscale"; the POST's answer."""
    page = await client.get(consent_url)
    assert page.status_code == 200, page.text
    form = {name: unescape(value) for name, value in _HIDDEN_INPUT.findall(page.text)}
    return await client.post(str(httpx.URL(consent_url).join("/authorize")), data=form)


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
