"""Linking our NODE.CREATE events to Tailscale's, and showing the link to readers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.chain import verify_chain
from service.audit.events import WORKER, Target, record_event
from service.audit.links import link_upstream_events
from service.audit.query import AuditFilter, query_audit, stream_audit


class FakeTailscale:
    """Only what linking uses: the observer switch and the configuration log."""

    def __init__(self, logs: list[dict[str, Any]], *, observer: bool = True) -> None:
        self.logs = logs
        self.observer = observer
        self.asked: list[dict[str, Any]] = []

    @property
    def has_observer(self) -> bool:
        return self.observer

    async def configuration_log(
        self, *, start: datetime, end: datetime, events: list[str] | None = None
    ) -> list[dict[str, Any]]:
        self.asked.append({"start": start, "end": end, "events": events})
        return self.logs


def upstream_node_create(node_id: str, name: str, group: str) -> dict[str, Any]:
    return {
        "eventGroupID": group,
        "origin": "NODE",
        "action": "CREATE",
        "target": {"id": node_id, "name": name, "type": "NODE", "isEphemeral": False},
    }


async def node_created(session: AsyncSession, node_id: str, name: str) -> str:
    event = await record_event(
        session, origin="CONTROL", actor=WORKER, target=Target(node_id, name, "NODE"),
        action="CREATE", user_id="alice",
    )  # fmt: skip
    return str(event.id)


def everything() -> AuditFilter:
    now = datetime.now(UTC)
    return AuditFilter(now - timedelta(hours=1), now + timedelta(hours=1))


async def test_links_by_node_id_then_by_name_and_shows_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        by_id = await node_created(session, "nA1CNTRL", "alice-box.tail1.ts.net")
        by_name = await node_created(session, "", "bob-box.tail1.ts.net")
        unmatched = await node_created(session, "nC3CNTRL", "carol-box.tail1.ts.net")
    client = FakeTailscale([
        upstream_node_create("nA1CNTRL", "renamed.tail1.ts.net", "group-a"),
        upstream_node_create("nB2CNTRL", "bob-box.tail1.ts.net", "group-b"),
        upstream_node_create("nZ9CNTRL", "stranger.tail1.ts.net", "group-z"),
        {"target": "malformed"},
    ])  # fmt: skip
    since = datetime.now(UTC) - timedelta(days=1)
    async with sessions() as session, session.begin():
        assert await link_upstream_events(session, client, since) == 2
    assert client.asked[0]["events"] == ["NODE.CREATE"]
    assert client.asked[0]["start"] == since
    async with sessions() as session:
        page = await query_audit(session, everything(), limit=10)
        # The link lives outside the hashed content: the chain still verifies.
        assert (await verify_chain(session)).ok
    groups = {log["id"]: log.get("upstreamEventGroupID") for log in page.logs}
    assert groups == {by_id: "group-a", by_name: "group-b", unmatched: None}
    exported = {
        log["id"]: log.get("upstreamEventGroupID")
        async for log in stream_audit(sessions, everything())
    }
    assert exported == groups


async def test_linking_twice_adds_nothing(session: AsyncSession) -> None:
    await node_created(session, "nA1CNTRL", "alice-box.tail1.ts.net")
    client = FakeTailscale([upstream_node_create("nA1CNTRL", "alice-box", "group-a")])
    since = datetime.now(UTC) - timedelta(hours=1)
    assert await link_upstream_events(session, client, since) == 1
    assert await link_upstream_events(session, client, since) == 0


async def test_without_observer_nothing_is_asked(session: AsyncSession) -> None:
    await node_created(session, "nA1CNTRL", "alice-box.tail1.ts.net")
    client = FakeTailscale([upstream_node_create("nA1CNTRL", "x", "g")], observer=False)
    assert await link_upstream_events(session, client, datetime.now(UTC)) == 0
    assert client.asked == []


# The event filter should keep other events out; linking does not rely on it.
async def test_consent_and_other_node_events_are_not_linked(session: AsyncSession) -> None:
    await node_created(session, "nA1CNTRL", "tsprov")
    await node_created(session, "nB2CNTRL", "bob-box.tail1.ts.net")
    consent = {
        "eventGroupID": "group-consent",
        "action": "APPROVE",
        "target": {"id": "aApp1CNTRL", "name": "tsprov", "type": "OAUTH_APP"},
    }
    approval = {**upstream_node_create("nB2CNTRL", "bob-box", "group-approve"), "action": "APPROVE"}
    client = FakeTailscale([consent, approval])
    since = datetime.now(UTC) - timedelta(hours=1)
    assert await link_upstream_events(session, client, since) == 0
    client.logs.append(upstream_node_create("nB2CNTRL", "bob-box", "group-b"))
    assert await link_upstream_events(session, client, since) == 1
