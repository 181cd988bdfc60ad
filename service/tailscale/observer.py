"""Calls made with the observer: an OAuth client of the tailnet's own (client credentials)
that reads devices, keys, users and the configuration log, and deletes or approves devices."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import SecretStr

from service.tailscale import wire
from service.tailscale.api_base import ApiBase, CachedToken, Params, path_id
from service.tailscale.transport import IDEMPOTENT, UpstreamResponse
from service.tailscale.wire import Device, KeyOwner, OAuthCredentials, UpstreamRefused

# Tailscale documents one hour for API access tokens; used when expires_in is missing.
_DEFAULT_TOKEN_LIFETIME = 3600.0
# Tailscale's rule for a custom posture attribute's name; it lands in a URL path too.
_ATTRIBUTE_KEY = re.compile(r"custom:[A-Za-z0-9_:]{1,121}")


class ObserverTokenStatus(StrEnum):
    NOT_CONFIGURED = "not_configured"  # no observer OAuth client in the settings
    NOT_FETCHED = "not_fetched"  # configured; no call has needed a token yet
    VALID = "valid"
    DUE = "due"  # past its early renewal point: the next observer call fetches a new one


@dataclass(frozen=True)
class ObserverTokenState:
    """What this process holds for the observer, for operators; never the token itself."""

    status: ObserverTokenStatus
    renews_in_seconds: float | None = None


class ObserverCalls(ApiBase):
    """The observer's calls, and its token: fetched once, shared, renewed early."""

    @property
    def has_observer(self) -> bool:
        return self._observer is not None

    @property
    def observer_token_state(self) -> ObserverTokenState:
        if self._observer is None:
            return ObserverTokenState(ObserverTokenStatus.NOT_CONFIGURED)
        cached = self._observer_token
        if cached is None:
            return ObserverTokenState(ObserverTokenStatus.NOT_FETCHED)
        left = cached.renew_at - self._clock()
        if left <= 0:
            return ObserverTokenState(ObserverTokenStatus.DUE)
        return ObserverTokenState(ObserverTokenStatus.VALID, left)

    async def key_owner(self, key_id: str) -> KeyOwner | None:
        """The key as the observer sees it; None when Tailscale does not show it (404)."""
        url = self._tailnet_url(f"keys/{path_id(key_id, 'key id')}")
        response = await self._observer_call("GET", url, None, absent_ok=True)
        return None if response.status == 404 else wire.key_owner(response.body)

    async def user_login(self, user_id: str) -> str | None:
        """A user's login name (observer, ``users:read``); None when there is no such user."""
        url = self._api_url(f"users/{path_id(user_id, 'user id')}")
        response = await self._observer_call("GET", url, None, absent_ok=True)
        return None if response.status == 404 else wire.login_name(response.body)

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

    async def _fetch_observer_token(self, observer: OAuthCredentials) -> CachedToken:
        form = {
            "grant_type": "client_credentials",
            "client_id": observer.client_id,
            "client_secret": observer.client_secret.get_secret_value(),
        }
        asked_at = self._clock()
        grant = await self._token_request(form, IDEMPOTENT)
        lifetime = _DEFAULT_TOKEN_LIFETIME if grant.expires_in is None else grant.expires_in
        # Renew early so a token never lapses between our check and Tailscale's.
        return CachedToken(grant.access_token, asked_at + lifetime - min(60.0, lifetime / 10))

    async def _observer_call(
        self,
        method: str,
        url: str,
        params: Params | None,
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
