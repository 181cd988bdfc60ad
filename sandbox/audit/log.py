"""Recording events in Tailscale's ConfigurationAuditLog shape, and the actors they name."""

import uuid
from dataclasses import dataclass
from typing import Any

from sandbox.audit.names import OAUTH_APP, event_name
from sandbox.clock import ZERO_TIME, rfc3339_precise
from sandbox.models import Actor, AuditEvent, OAuthApp, OAuthClient, User
from sandbox.state import SandboxState

SANDBOX_WORKER: Actor = {
    "id": "",
    "type": "AUTOMATED_WORKER",
    "loginName": "",
    "displayName": "sandbox control plane",
    "tags": [],
}


def user_actor(user: User) -> Actor:
    """Return the actor for a person."""
    return {
        "id": user.id,
        "type": "USER",
        "loginName": user.login_name,
        "displayName": user.display_name,
        "tags": [],
    }


def client_actor(client: OAuthClient) -> Actor:
    """Return the actor for an OAuth client (a service identity)."""
    return {
        "id": client.id,
        "type": "OAUTH_CLIENT",
        "loginName": "",
        "displayName": client.description,
        "tags": [],
    }


def app_actor(app: OAuthApp) -> Actor:
    """Return an OAuth app as an actor: a service identity with no login name."""
    return {
        "id": app.id,
        "type": "OAUTH_CLIENT",
        "loginName": "",
        "displayName": app.name,
        "tags": [],
    }


def new_group_id() -> str:
    """Return an eventGroupID for the events of one operation."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Target:
    """What an event is about."""

    type: str
    id: str
    name: str
    is_ephemeral: bool = False
    property: str = ""

    def as_json(self) -> dict[str, Any]:
        """Return the `target` member of an event."""
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "isEphemeral": self.is_ephemeral,
            "property": self.property,
        }


def record_event(
    state: SandboxState,
    *,
    actor: Actor,
    target: Target,
    action: str,
    origin: str = "CONFIG_API",
    group_id: str | None = None,
    old: Any = None,
    new: Any = None,
    details: str = "",
    error: str = "",
) -> None:
    """Append an event; the caller holds the state lock."""
    if target.type == OAUTH_APP and not state.switches.oauth_app_events:
        return
    state.events.append(
        AuditEvent(
            event_time=state.clock.now(),
            group_id=group_id or new_group_id(),
            origin=origin,
            actor=dict(actor),
            target=target.as_json(),
            action=action,
            name=event_name(target.type, action, target.property),
            old=old,
            new=new,
            details=details,
            error=error,
        )
    )


def event_json(event: AuditEvent) -> dict[str, Any]:
    """Return an event as `logging/configuration` lists it."""
    return {
        "eventTime": rfc3339_precise(event.event_time),
        "type": "CONFIG",
        "deferredAt": ZERO_TIME,
        "eventGroupID": event.group_id,
        "origin": event.origin,
        "actor": event.actor,
        "target": event.target,
        "action": event.action,
        "old": event.old,
        "new": event.new,
        "actionDetails": event.details,
        "error": event.error,
    }
