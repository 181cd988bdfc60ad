"""The one client tsprov uses for Tailscale: its OAuth token endpoint and API v2."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from pydantic import SecretStr

from service.tailscale import wire
from service.tailscale.api_base import path_id
from service.tailscale.observer import ObserverCalls
from service.tailscale.transport import (
    IDEMPOTENT,
    NON_IDEMPOTENT,
    REFRESH,
    SINGLE_USE,
    RetryPolicy,
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


class TailscaleClient(ObserverCalls):
    """Typed calls to Tailscale, each under one deadline and retried only where that is safe."""

    @property
    def breaker_state(self) -> str:
        return self._upstream.breaker.state

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

    async def list_keys(self, access_token: SecretStr | None = None) -> list[wire.ListedKey]:
        """Every live key the token sees (the observer's, with ``all``, when none is given)."""
        url = self._tailnet_url("keys")
        if access_token is None:
            response = await self._observer_call("GET", url, {"all": "true"})
        else:
            response = await self._send("GET", url, IDEMPOTENT, access_token)
            wire.expect_success(response.status)
        return [wire.listed_key(item) for item in wire.object_list(response.body, "keys")]

    async def delete_key(self, key_id: str, access_token: SecretStr | None = None) -> bool:
        """Delete a key with the given token, else the observer's; True unless already gone."""
        url = self._tailnet_url(f"keys/{path_id(key_id, 'key id')}")
        if access_token is None:
            response = await self._observer_call("DELETE", url, None, absent_ok=True)
        else:
            response = await self._send("DELETE", url, IDEMPOTENT, access_token, absent_ok=True)
            if response.status != 404:
                wire.expect_success(response.status)
        return response.status != 404
