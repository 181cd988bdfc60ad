"""`POST /api/v2/oauth/token`: the token endpoint for OAuth apps and OAuth clients."""

import base64
import binascii
from typing import Any
from urllib.parse import unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData

from sandbox.bearer import StateDep
from sandbox.errors import NO_STORE, OAuthError, oauth_error_response
from sandbox.grants.consent import exchange_code
from sandbox.grants.tokens import issue_client_token, refresh_grant
from sandbox.identifiers import secret_matches
from sandbox.models import OAuthApp, OAuthClient
from sandbox.state import SandboxState

USER_GRANT_TYPES = ("authorization_code", "refresh_token")
router = APIRouter(tags=["oauth"])


def _single(form: FormData, name: str) -> str | None:
    values = form.getlist(name)
    if len(values) > 1:
        raise OAuthError("invalid_request", f"parameter {name} is repeated")
    if not values:
        return None
    value = values[0]
    if not isinstance(value, str):
        raise OAuthError("invalid_request", f"parameter {name} must be a plain value")
    return value


def _required(form: FormData, name: str) -> str:
    value = _single(form, name)
    if not value:
        raise OAuthError("invalid_request", f"parameter {name} is required")
    return value


def _basic_credentials(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "malformed Basic credentials") from None
    client_id, separator, secret = decoded.partition(":")
    if not separator:
        raise OAuthError("invalid_client", "malformed Basic credentials")
    # RFC 6749 §2.3.1: both parts are form-encoded before they are joined.
    return unquote_plus(client_id), unquote_plus(secret)


def _presented_client(request: Request, form: FormData) -> tuple[str, str]:
    form_id, form_secret = _single(form, "client_id"), _single(form, "client_secret")
    header = request.headers.get("authorization")
    if header is None:
        if not form_id or not form_secret:
            raise OAuthError("invalid_client", "client authentication is required")
        return form_id, form_secret
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError("invalid_client", "unsupported client authentication scheme")
    if form_secret is not None:
        raise OAuthError("invalid_request", "more than one client authentication method")
    client_id, secret = _basic_credentials(value)
    if form_id is not None and form_id != client_id:
        raise OAuthError("invalid_client", "client_id does not match the credentials")
    return client_id, secret


def _authenticate(state: SandboxState, client_id: str, secret: str) -> OAuthApp | OAuthClient:
    with state.lock:
        party: OAuthApp | OAuthClient | None = state.apps.get(client_id)
        party = party or state.clients.get(client_id)
    if party is None or not secret_matches(secret, party.secret_digest):
        raise OAuthError("invalid_client", "client authentication failed")
    return party


async def _token_form(request: Request) -> FormData:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    return await request.form()


def _as_app(party: OAuthApp | OAuthClient, grant_type: str) -> OAuthApp:
    if not isinstance(party, OAuthApp):
        raise OAuthError("unauthorized_client", f"this client may not use {grant_type}")
    return party


def _grant_type(party: OAuthApp | OAuthClient, form: FormData) -> str:
    # Tailscale's own client-credentials example sends no grant_type.
    if isinstance(party, OAuthClient) and not form.getlist("grant_type"):
        return "client_credentials"
    return _required(form, "grant_type")


def _grant(state: SandboxState, party: OAuthApp | OAuthClient, form: FormData) -> dict[str, Any]:
    grant_type = _grant_type(party, form)
    forced = state.switches.forced_oauth_error
    if forced == "invalid_grant" and grant_type in USER_GRANT_TYPES:
        raise OAuthError("invalid_grant", "the sandbox is forcing invalid_grant")
    if grant_type == "authorization_code":
        return exchange_code(
            state,
            _as_app(party, grant_type),
            code=_required(form, "code"),
            redirect_uri=_required(form, "redirect_uri"),
            verifier=_single(form, "code_verifier"),
        )
    if grant_type == "refresh_token":
        return refresh_grant(
            state,
            _as_app(party, grant_type),
            refresh_token=_required(form, "refresh_token"),
            scope=_single(form, "scope"),
        )
    if grant_type == "client_credentials":
        if isinstance(party, OAuthApp):
            raise OAuthError("unauthorized_client", "an OAuth app may not use client_credentials")
        return issue_client_token(state, party.id, party.scopes, _single(form, "scope"))
    raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")


def _error_shape(state: SandboxState, form: FormData | None, client_id: str | None) -> str:
    """Client-credentials refusals are `{"message"}` [3rd]; the rest follow the switch [?]."""
    grant_types = form.getlist("grant_type") if form is not None else []
    if grant_types == ["client_credentials"] or (not grant_types and client_id in state.clients):
        return "message"
    return state.switches.token_error_shape


@router.post("/api/v2/oauth/token")
async def token_endpoint(request: Request, state: StateDep) -> JSONResponse:
    """Exchange a code, rotate a refresh token, or issue a client-credentials token."""
    form: FormData | None = None
    client_id: str | None = None
    try:
        form = await _token_form(request)
        client_id, secret = _presented_client(request, form)
        party = _authenticate(state, client_id, secret)
        if state.switches.forced_oauth_error == "invalid_client":
            raise OAuthError("invalid_client", "the sandbox is forcing invalid_client")
        return JSONResponse(_grant(state, party, form), headers=NO_STORE)
    except OAuthError as exc:
        return oauth_error_response(exc, _error_shape(state, form, client_id))
