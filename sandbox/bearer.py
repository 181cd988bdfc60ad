"""Who is calling the API: bearer (or Basic) token resolution and scope checks."""

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from sandbox.audit.log import client_actor, user_actor
from sandbox.errors import ApiError
from sandbox.identifiers import secret_digest
from sandbox.models import AccessToken, Actor, CallerKind
from sandbox.scopes import scopes_allow
from sandbox.state import SandboxState


@dataclass(frozen=True)
class Caller:
    """An authenticated API caller."""

    kind: CallerKind
    scopes: frozenset[str]
    user_id: str
    actor: Actor
    # The OAuth client behind a client token; the OAuth app behind a reusable grant's token.
    client_id: str = ""
    app_id: str = ""

    def holds(self, scope: str) -> bool:
        """True when the caller's scopes permit `scope`."""
        return scopes_allow(self.scopes, scope)

    def require(self, scope: str) -> None:
        """Raise 403 unless the caller's scopes permit `scope`."""
        if not self.holds(scope):
            raise ApiError(403, f"access token lacks the {scope} scope")


def sandbox_state(request: Request) -> SandboxState:
    """Return the state of the app serving this request."""
    state: SandboxState = request.app.state.sandbox
    return state


StateDep = Annotated[SandboxState, Depends(sandbox_state)]


def _presented_token(request: Request) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic":
        # Tailscale also accepts the token as a Basic user name with an empty password.
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(401, "API token invalid") from None
        return decoded.partition(":")[0]
    raise ApiError(401, "API token required")


def _live_token(state: SandboxState, presented: str) -> AccessToken:
    token = state.access_tokens.get(secret_digest(presented))
    if token is None or token.revoked:
        raise ApiError(401, "API token invalid")
    if token.expires is not None and token.expires <= state.clock.now():
        raise ApiError(401, "API token expired")
    grant = state.grants.get(token.grant_id or "")
    if grant is not None and grant.revoked:
        raise ApiError(401, "API token invalid")
    return token


def _client_caller(state: SandboxState, token: AccessToken) -> Caller:
    client = state.clients[token.client_id]
    if token.follows_client:
        scopes = frozenset(client.scopes)
    else:
        # A narrowed token loses whatever its client no longer holds.
        scopes = frozenset(s for s in token.scopes if scopes_allow(client.scopes, s))
    return Caller("client", scopes, "", client_actor(client), client_id=client.id)


def resolve_caller(request: Request, state: StateDep) -> Caller:
    """Authenticate the request's token; 401 when missing, unknown, expired or revoked."""
    presented = _presented_token(request)
    with state.lock:
        token = _live_token(state, presented)
        if token.kind == "client":
            return _client_caller(state, token)
        user = state.users[token.user_id]
        app_id = token.client_id if token.grant_id else ""
        return Caller(token.kind, token.scopes, user.id, user_actor(user), app_id=app_id)


CallerDep = Annotated[Caller, Depends(resolve_caller)]


def known_tailnet(tailnet: str, state: StateDep) -> str:
    """Accept `-` and the tailnet's name; anything else is not found."""
    if not state.known_tailnet(tailnet):
        raise ApiError(404, "tailnet not found")
    return tailnet


TailnetDep = Annotated[str, Depends(known_tailnet)]


def scoped(scope: str) -> Any:
    """Return a dependency that authenticates the caller and demands `scope` before the body."""

    def caller_with_scope(caller: CallerDep) -> Caller:
        caller.require(scope)
        return caller

    return Depends(caller_with_scope)
