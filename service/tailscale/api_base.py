"""The plumbing under every Tailscale call: the HTTP client, bearer-token calls, the token
endpoint and URLs. ``TailscaleClient`` (client.py) builds on it."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from service.tailscale import refusals, wire
from service.tailscale.breaker import Clock
from service.tailscale.telemetry import CallObserver
from service.tailscale.transport import (
    Replay,
    RetryPolicy,
    Sleep,
    UpstreamCaller,
    UpstreamResponse,
    WallClock,
    utc_now,
)
from service.tailscale.wire import (
    OAuthCredentials,
    TailscaleEndpoints,
    TokenGrant,
)

# Ids land in URL paths sent with the observer's token: "..", "/" or "?" could reach
# another endpoint, so only the characters Tailscale's ids use pass.
_PATH_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
Params = Mapping[str, str | Sequence[str]]


@dataclass(frozen=True)
class CachedToken:
    token: SecretStr
    renew_at: float


class ApiBase:
    """What every call shares: one deadline each, retried only where that is safe."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        endpoints: TailscaleEndpoints,
        app: OAuthCredentials,
        observer: OAuthCredentials | None,
        *,
        identity_field: str | None = None,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        now: WallClock = utc_now,
        rng: random.Random | None = None,
        telemetry: CallObserver | None = None,
    ) -> None:
        self._http = http
        self._endpoints = endpoints
        self._app = app
        self._observer = observer
        self._identity_path = identity_field.split(".") if identity_field else None
        self._clock = clock
        retry, jitter = policy or RetryPolicy(), rng or random.SystemRandom()
        self._upstream = UpstreamCaller(
            http, retry, sleep=sleep, clock=clock, now=now, rng=jitter, telemetry=telemetry
        )
        self._observer_lock = asyncio.Lock()
        self._observer_token: CachedToken | None = None

    async def _token_request(
        self,
        form: dict[str, str],
        replay: Replay,
        *,
        secrets: Sequence[str] = (),
        redeeming: bool = False,
    ) -> TokenGrant:
        # Client authentication as form fields (client_secret_post), as Tailscale expects.
        headers = {"Accept": "application/json"}
        request = self._http.build_request(
            "POST", self._api_url("oauth/token"), data=form, headers=headers
        )
        response = await self._upstream.call(request, replay)
        if 400 <= response.status < 500:
            hidden = (*secrets, form["client_secret"])
            raise refusals.token_error(response.status, response.body, hidden, redeeming=redeeming)
        wire.expect_success(response.status)
        return wire.token_grant(response.body, self._identity_path)

    async def _send(
        self,
        method: str,
        url: str,
        replay: Replay,
        token: SecretStr,
        params: Params | None = None,
        *,
        json_body: Any = None,
        absent_ok: bool = False,
    ) -> UpstreamResponse:
        """A bearer-token API call; a 4xx raises UpstreamRefused, a 404 too unless absent_ok."""
        secret = token.get_secret_value()
        headers = {"Authorization": f"Bearer {secret}"}
        request = self._http.build_request(
            method, url, params=params, json=json_body, headers=headers
        )
        response = await self._upstream.call(request, replay)
        if 400 <= response.status < 500 and not (absent_ok and response.status == 404):
            raise refusals.refused(response.status, response.body, (secret,))
        return response

    def _api_url(self, path: str) -> str:
        return f"{self._endpoints.api_url.rstrip('/')}/api/v2/{path}"

    def _tailnet_url(self, suffix: str) -> str:
        return self._api_url(f"tailnet/{quote(self._endpoints.tailnet, safe='')}/{suffix}")

    def _device_url(self, device_id: str) -> str:
        return self._api_url(f"device/{path_id(device_id, 'device id')}")


def path_id(value: str, kind: str = "id") -> str:
    if not _PATH_ID.fullmatch(value):
        raise ValueError(f"{kind} has characters Tailscale ids never have")
    return value
