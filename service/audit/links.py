"""Linking tsprov's events to Tailscale's own audit log through the observer credential.

A device tsprov provisioned appears in both logs as ``NODE.CREATE``. Storing Tailscale's
``eventGroupID`` next to ours (in ``audit_link``, since ``audit_event`` is append-only)
lets an auditor read the two logs side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import store
from service.models import AuditEvent

NODE_CREATE = "NODE.CREATE"


class ConfigurationLogReader(Protocol):
    """The part of the Tailscale client this needs."""

    @property
    def has_observer(self) -> bool: ...

    async def configuration_log(
        self, *, start: datetime, end: datetime, events: list[str] | None = None
    ) -> list[dict[str, Any]]: ...


def _names_another_event(log: dict[str, Any], target: dict[str, Any]) -> bool:
    """An entry that says it is not a node's creation. The ``event`` filter should keep
    these out, but the consent events (``OAUTH_APP.*``, undocumented) name the app and
    the person, and an upstream that ignored the filter must not link them to a device."""
    kind, action = target.get("type"), log.get("action")
    return (kind is not None and kind != "NODE") or (action is not None and action != "CREATE")


def _upstream_nodes(logs: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """``(node id, device name, eventGroupID)`` of each well-formed upstream NODE.CREATE."""
    nodes = []
    for log in logs:
        target = log.get("target")
        group = log.get("eventGroupID")
        if not isinstance(target, dict) or not isinstance(group, str) or not group:
            continue
        if _names_another_event(log, target):
            continue
        node_id, name = target.get("id"), target.get("name")
        nodes.append((node_id if isinstance(node_id, str) else "", name or "", group))
    return nodes


def _match(event: AuditEvent, nodes: list[tuple[str, str, str]]) -> str | None:
    """Tailscale's group for our event: by node id first, the device name only as fallback."""
    node_id, name = event.target.get("id") or "", event.target.get("name") or ""
    by_id = [group for upstream_id, _, group in nodes if node_id and upstream_id == node_id]
    if by_id:
        return by_id[0]
    by_name = [group for _, upstream_name, group in nodes if name and upstream_name == name]
    return by_name[0] if by_name else None


async def link_upstream_events(
    session: AsyncSession, tailscale_client: ConfigurationLogReader, since: datetime
) -> int:
    """Link our unlinked ``NODE.CREATE`` events to Tailscale's since ``since``; how many."""
    if not tailscale_client.has_observer:
        return 0
    logs = await tailscale_client.configuration_log(
        start=since, end=datetime.now(UTC), events=[NODE_CREATE]
    )
    nodes = _upstream_nodes(logs)
    if not nodes:
        return 0
    node_ids = {node_id for node_id, _, _ in nodes if node_id}
    names = {name for _, name, _ in nodes if name}
    linked = 0
    for event in await store.unlinked_node_events(session, NODE_CREATE, node_ids, names):
        group = _match(event, nodes)
        if group is None:
            continue
        # Another replica may link the same event concurrently; the first one wins.
        linked += await store.link_event(session, event.id, group[:64])
    return linked
