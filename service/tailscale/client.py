"""The one client tsprov uses for Tailscale: its OAuth token endpoint and API v2."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from pydantic import SecretStr

from service.tailscale import wire
from service.tailscale.breaker import Clock
from service.tailscale.telemetry import CallObserver
from service.tailscale.transport import (
    IDEMPOTENT,
    NON_IDEMPOTENT,
    REFRESH,
    SINGLE_USE,
    Replay,
    RetryPolicy,
    Sleep,
    UpstreamCaller,
    UpstreamResponse,
    WallClock,
    utc_now,
)
from service.tailscale.wire import (
    CircuitOpen,
    Device,
    InvalidGrant,
    KeyOwner,
    MintedKey,
    OAuthCredentials,
    OAuthError,
    OutcomeUnknown,
    TailscaleEndpoints,
    TailscaleError,
    TokenGrant,
    UpstreamRefused,
    UpstreamUnavailable,
)

__all__ = [
    "CircuitOpen",
    "Device",
    "InvalidGrant",
    "KeyOwner",
    "MintedKey",
    "OAuthCredentials",
    "OAuthError",
    "OutcomeUnknown",
    "RetryPolicy",
    "TailscaleClient",
    "TailscaleEndpoints",
    "TailscaleError",
    "TokenGrant",
    "UpstreamRefused",
    "UpstreamUnavailable",
]

# Ids land in URL paths sent with the observer's token: "..", "/" or "?" could reach
# another endpoint, so only the characters Tailscale's ids use pass.
_PATH_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
# Tailscale documents one hour for API access tokens; used when expires_in is missing.
_DEFAULT_TOKEN_LIFETIME = 3600.0
# Tailscale's rule for a custom posture attribute's name; it lands in a URL path too.
_ATTRIBUTE_KEY = re.compile(r"custom:[A-Za-z0-9_:]{1,121}")
_Params = Mapping[str, str | Sequence[str]]


@dataclass(frozen=True)
class _CachedToken:
    token: SecretStr
    renew_at: float


class TailscaleClient:
    """Typed calls to Tailscale, each under one deadline and retried only where that is safe."""

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
        self._observer_token: _CachedToken | None = None

    @property
    def breaker_state(self) -> str:
        return self._upstream.breaker.state

    @property
    def has_observer(self) -> bool:
        return self._observer is not None

    async def aclose(self) -> None:
        await self._http.aclose()

    def authorize_url(
        self, *, redirect_uri: str, scope: str, state: str, code_challenge: str
    ) -> str:
        """The consent URL; S256 PKCE is always sent, as servers without PKCE ignore it."""
        query = {
            "client_id": self._app.client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": scope,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        base = self._endpoints.login_url.rstrip("/")
        return f"{base}/a/oauth_authorize?{urlencode(query, quote_via=quote)}"

    async def exchange_code(
        self, *, code: str, code_verifier: str, redirect_uri: str
    ) -> TokenGrant:
        """Redeem a single-use code: resent only when it provably never reached Tailscale."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": self._app.client_id,
            "client_secret": self._app.client_secret.get_secret_value(),
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        return await self._token_request(
            form, SINGLE_USE, secrets=(code, code_verifier), redeeming=True
        )

    async def refresh(self, refresh_token: SecretStr) -> TokenGrant:
        """Redeem a refresh token, resending at most once after an answer was lost."""
        value = refresh_token.get_secret_value()
        form = {
            "grant_type": "refresh_token",
            "refresh_token": value,
            "client_id": self._app.client_id,
            "client_secret": self._app.client_secret.get_secret_value(),
        }
        return await self._token_request(form, REFRESH, secrets=(value,), redeeming=True)

    async def create_auth_key(
        self,
        access_token: SecretStr,
        *,
        reusable: bool,
        ephemeral: bool,
        preauthorized: bool,
        tags: list[str],
        expiry_seconds: int | None,
        description: str | None,
    ) -> MintedKey:
        """Mint a key owned by the token's user; a lost answer raises OutcomeUnknown."""
        create = {"reusable": reusable, "ephemeral": ephemeral, "preauthorized": preauthorized}
        body: dict[str, Any] = {"capabilities": {"devices": {"create": {**create, "tags": tags}}}}
        if expiry_seconds is not None:
            body["expirySeconds"] = expiry_seconds
        if description is not None:
            body["description"] = description
        url = self._tailnet_url("keys")
        response = await self._send("POST", url, NON_IDEMPOTENT, access_token, json_body=body)
        try:
            wire.expect_success(response.status)
            return wire.minted_key(response.body)
        except UpstreamUnavailable as exc:
            # Not a 4xx: Tailscale may have made the key even though its answer is unreadable.
            raise OutcomeUnknown(str(exc)) from None

    async def key_owner(self, key_id: str) -> KeyOwner | None:
        """The key as the observer sees it; None when Tailscale does not show it (404)."""
        url = self._tailnet_url(f"keys/{_path_id(key_id, 'key id')}")
        response = await self._observer_call("GET", url, None, absent_ok=True)
        return None if response.status == 404 else wire.key_owner(response.body)

    async def list_keys(self, access_token: SecretStr | None = None) -> list[wire.ListedKey]:
        """Every live key the token sees (the observer's, with ``all``, when none is given)."""
        url = self._tailnet_url("keys")
        if access_token is None:
            response = await self._observer_call("GET", url, {"all": "true"})
        else:
            response = await self._send("GET", url, IDEMPOTENT, access_token)
            wire.expect_success(response.status)
        return [wire.listed_key(item) for item in wire.object_list(response.body, "keys")]

    async def user_login(self, user_id: str) -> str | None:
        """A user's login name (observer, ``users:read``); None when there is no such user."""
        url = self._api_url(f"users/{_path_id(user_id, 'user id')}")
        response = await self._observer_call("GET", url, None, absent_ok=True)
        return None if response.status == 404 else wire.login_name(response.body)

    async def delete_key(self, key_id: str, access_token: SecretStr | None = None) -> bool:
        """Delete a key with the given token, else the observer's; True unless already gone."""
        url = self._tailnet_url(f"keys/{_path_id(key_id, 'key id')}")
        if access_token is None:
            response = await self._observer_call("DELETE", url, None, absent_ok=True)
        else:
            response = await self._send("DELETE", url, IDEMPOTENT, access_token, absent_ok=True)
            if response.status != 404:
                wire.expect_success(response.status)
        return response.status != 404

    async def list_devices(self) -> list[Device]:
        response = await self._observer_call("GET", self._tailnet_url("devices"), {"fields": "all"})
        return [wire.device(item) for item in wire.object_list(response.body, "devices")]

    async def delete_device(self, device_id: str) -> bool:
        """True when deleted now, False when it was already gone."""
        url = self._device_url(device_id)
        response = await self._observer_call("DELETE", url, None, absent_ok=True)
        return response.status != 404

    async def authorize_device(self, device_id: str) -> None:
        """Approve a device that waits for approval; a 402 (quota, billing) is UpstreamRefused."""
        url = f"{self._device_url(device_id)}/authorized"
        await self._observer_call("POST", url, None, json_body={"authorized": True})

    async def set_device_attribute(self, device_id: str, key: str, value: bool | int | str) -> None:
        """Set one custom posture attribute on a device (``devices:posture_attributes``)."""
        if not _ATTRIBUTE_KEY.fullmatch(key):
            raise ValueError("not a custom attribute key Tailscale accepts")
        url = f"{self._device_url(device_id)}/attributes/{key}"
        await self._observer_call("POST", url, None, json_body={"value": value})

    async def configuration_log(
        self, *, start: datetime, end: datetime, events: list[str] | None = None
    ) -> list[dict[str, Any]]:
        # An empty event list adds no parameter, so every event is returned.
        params = {"start": wire.rfc3339(start), "end": wire.rfc3339(end), "event": events or []}
        url = self._tailnet_url("logging/configuration")
        response = await self._observer_call("GET", url, params)
        return wire.object_list(response.body, "logs")

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
            raise wire.token_error(response.status, response.body, hidden, redeeming=redeeming)
        wire.expect_success(response.status)
        return wire.token_grant(response.body, self._identity_path)

    async def _observer_access_token(self) -> SecretStr:
        """The observer's client-credentials token, fetched once for any number of callers."""
        if self._observer is None:
            raise RuntimeError("no observer OAuth client is configured")
        cached = self._observer_token
        if cached is None or cached.renew_at <= self._clock():
            async with self._observer_lock:
                # Whoever held the lock before us may have fetched a fresh token meanwhile.
                cached = self._observer_token
                if cached is None or cached.renew_at <= self._clock():
                    cached = await self._fetch_observer_token(self._observer)
                    self._observer_token = cached
        return cached.token

    async def _fetch_observer_token(self, observer: OAuthCredentials) -> _CachedToken:
        form = {
            "grant_type": "client_credentials",
            "client_id": observer.client_id,
            "client_secret": observer.client_secret.get_secret_value(),
        }
        asked_at = self._clock()
        grant = await self._token_request(form, IDEMPOTENT)
        lifetime = _DEFAULT_TOKEN_LIFETIME if grant.expires_in is None else grant.expires_in
        # Renew early so a token never lapses between our check and Tailscale's.
        return _CachedToken(grant.access_token, asked_at + lifetime - min(60.0, lifetime / 10))

    async def _observer_call(
        self,
        method: str,
        url: str,
        params: _Params | None,
        *,
        absent_ok: bool = False,
        json_body: Any = None,
    ) -> UpstreamResponse:
        token = await self._observer_access_token()
        sent = {"absent_ok": absent_ok, "json_body": json_body}
        try:
            response = await self._send(method, url, IDEMPOTENT, token, params, **sent)
        except UpstreamRefused as exc:
            cached = self._observer_token
            if exc.status != 401 or cached is None or cached.token is not token:
                raise
            # Revoked before its expiry: fetch a new token and send once more, which is safe
            # as observer calls only read, delete or set a state that repeats harmlessly.
            self._observer_token = None
            token = await self._observer_access_token()
            response = await self._send(method, url, IDEMPOTENT, token, params, **sent)
        if not (absent_ok and response.status == 404):
            wire.expect_success(response.status)
        return response

    async def _send(
        self,
        method: str,
        url: str,
        replay: Replay,
        token: SecretStr,
        params: _Params | None = None,
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
            raise wire.refused(response.status, response.body, (secret,))
        return response

    def _api_url(self, path: str) -> str:
        return f"{self._endpoints.api_url.rstrip('/')}/api/v2/{path}"

    def _tailnet_url(self, suffix: str) -> str:
        return self._api_url(f"tailnet/{quote(self._endpoints.tailnet, safe='')}/{suffix}")

    def _device_url(self, device_id: str) -> str:
        return self._api_url(f"device/{_path_id(device_id, 'device id')}")


def _path_id(value: str, kind: str = "id") -> str:
    if not _PATH_ID.fullmatch(value):
        raise ValueError(f"{kind} has characters Tailscale ids never have")
    return value
