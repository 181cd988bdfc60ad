"""OAuth apps as the admin API manages them; the client id of an app is its id."""

from typing import Any

from sandbox.audit.log import Target, new_group_id, record_event
from sandbox.clock import rfc3339
from sandbox.errors import ApiError
from sandbox.grants.tokens import revoke_grant
from sandbox.identifiers import embedded_secret, new_stable_id, secret_digest
from sandbox.models import Actor, OAuthApp
from sandbox.schemas import OAuthAppBody
from sandbox.state import SandboxState

APP_CREDENTIAL_PREFIX = "tskey-app-"


def app_json(app: OAuthApp, secret: str | None = None) -> dict[str, Any]:
    """Return the app object; `clientSecret` appears only in the create response."""
    body: dict[str, Any] = {
        "id": app.id,
        "name": app.name,
        "description": app.description,
        "redirectURIs": list(app.redirect_uris),
        "scopes": list(app.scopes),
        "allowedNodeAttributes": list(app.allowed_node_attributes),
        "created": rfc3339(app.created),
        "updated": rfc3339(app.updated),
    }
    if secret is not None:
        body["clientSecret"] = secret
    return body


def _target(app: OAuthApp) -> Target:
    return Target("OAUTH_APP", app.id, app.name)


def _apply(app: OAuthApp, body: OAuthAppBody) -> None:
    app.name = body.name
    app.description = body.description
    app.redirect_uris = list(body.redirectURIs)
    app.scopes = list(body.scopes)
    app.allowed_node_attributes = list(body.allowedNodeAttributes)


def create_oauth_app(state: SandboxState, body: OAuthAppBody, actor: Actor) -> dict[str, Any]:
    """Register an app and return it with its secret, the only time the secret is shown."""
    # App ids read a…CNTRL, and the secret embeds the id, as Tailscale's do.
    app_id = new_stable_id("a")
    secret = embedded_secret(APP_CREDENTIAL_PREFIX, app_id)
    with state.lock:
        now = state.clock.now()
        app = OAuthApp(
            id=app_id,
            name="",
            description="",
            redirect_uris=[],
            scopes=[],
            allowed_node_attributes=[],
            secret_digest=secret_digest(secret),
            created=now,
            updated=now,
        )
        _apply(app, body)
        state.apps[app.id] = app
        record_event(state, actor=actor, target=_target(app), action="CREATE", new=app_json(app))
        return app_json(app, secret)


def find_oauth_app(state: SandboxState, app_id: str) -> OAuthApp:
    """Return an app or raise 404. Caller holds the lock."""
    app = state.apps.get(app_id)
    if app is None:
        raise ApiError(404, "oauth app not found")
    return app


def replace_oauth_app(
    state: SandboxState, app_id: str, body: OAuthAppBody, actor: Actor
) -> dict[str, Any]:
    """Replace every field of an app; its id and secret stay."""
    with state.lock:
        app = find_oauth_app(state, app_id)
        old = app_json(app)
        _apply(app, body)
        app.updated = state.clock.now()
        new = app_json(app)
        record_event(state, actor=actor, target=_target(app), action="UPDATE", old=old, new=new)
        return new


def delete_oauth_app(state: SandboxState, app_id: str, actor: Actor) -> None:
    """Delete an app; its grants and their tokens stop working."""
    with state.lock:
        app = find_oauth_app(state, app_id)
        group_id = new_group_id()
        for grant in state.grants.values():
            if grant.client_id == app.id:
                revoke_grant(state, grant, "oauth app deleted", group_id)
        del state.apps[app.id]
        record_event(
            state,
            actor=actor,
            target=_target(app),
            action="DELETE",
            group_id=group_id,
            old=app_json(app),
        )
