"""What the operators' console reads: filters and keyset pages return what they should, and
every list is an index range that needs no sort, at any depth."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from service.audit.events import Actor, Target, record_event
from service.audit.recent import verify_recent
from service.audit.sealer import sealer_lag
from service.callers.listing import callers_with_last_use
from service.callers.store import create_caller
from service.provisioning.overview import request_timeline, requests_page
from service.provisioning.status import RequestStatus
from service.provisioning.store import RequestFilter
from service.provisioning.store.creation import insert_request, new_request
from service.users.directory import users_page
from service.users.store import ensure_user
from tests.unit.audit_support import append_at, seal_now

T0 = datetime(2001, 12, 1, tzinfo=UTC)
STATUSES = [RequestStatus.AWAITING_CONSENT, RequestStatus.READY, RequestStatus.JOINED]


async def add_requests(session: AsyncSession, count: int) -> list[Any]:
    """``count`` requests, an hour apart, over 3 users, 2 callers and 3 statuses."""
    made = []
    for n in range(count):
        request = new_request(
            user_id=f"user{n % 3}",
            status=STATUSES[n % 3],
            created_by=f"caller{n % 2}",
            created_at=T0 + timedelta(hours=n),
            updated_at=T0 + timedelta(hours=n),
        )
        await insert_request(session, request)
        made.append(request)
    return made


async def every_page(session: AsyncSession, wanted: RequestFilter, limit: int) -> list[Any]:
    seen, cursor = [], None
    while True:
        page = await requests_page(session, wanted, limit, cursor)
        seen.extend(page.rows)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


@pytest.mark.parametrize(
    ("wanted", "keep"),
    [
        (RequestFilter(), lambda n: True),
        (RequestFilter(user_id="user1"), lambda n: n % 3 == 1),
        (RequestFilter(created_by="caller0"), lambda n: n % 2 == 0),
        (RequestFilter(status=RequestStatus.JOINED), lambda n: n % 3 == 2),
        (
            RequestFilter(
                created_from=T0 + timedelta(hours=5), created_until=T0 + timedelta(hours=9)
            ),
            lambda n: 5 <= n < 9,
        ),
        (
            RequestFilter(
                user_id="user0", created_by="caller1", status=RequestStatus.AWAITING_CONSENT
            ),
            lambda n: n % 6 == 3,
        ),
    ],
)
async def test_filters_and_pages_give_each_matching_request_once_newest_first(
    session: AsyncSession, wanted: RequestFilter, keep: Callable[[int], bool]
) -> None:
    made = await add_requests(session, 20)
    ours = {request.id for request in made}
    expected = [request.id for n, request in reversed(list(enumerate(made))) if keep(n)]
    # Rows other suites committed to this database may be listed too; ours come in order.
    listed = [row.id for row in await every_page(session, wanted, 3) if row.id in ours]
    assert listed == expected
    assert expected  # each case matches something


async def test_users_page_counts_each_users_grants_and_devices(session: AsyncSession) -> None:
    # A prefix of its own: other suites may have committed users to this database.
    prefix = f"u{uuid.uuid4().hex[:12]}"
    actor = Actor(id="ops", type="USER", login_name="ops")
    for name in ("carol", "alice", "bob"):
        await ensure_user(session, actor, f"{prefix}-{name}", origin="CONFIG_API")
    joined = new_request(
        user_id=f"{prefix}-bob", status=RequestStatus.JOINED, created_by="c", device_node_id="n1"
    )
    await insert_request(session, joined)
    first = await users_page(session, prefix, 2)
    assert [entry.user.user_id for entry in first.entries] == [f"{prefix}-alice", f"{prefix}-bob"]
    assert [entry.devices for entry in first.entries] == [0, 1]
    assert first.next_cursor == f"{prefix}-bob"
    rest = await users_page(session, first.next_cursor, 2)
    assert rest.entries[0].user.user_id == f"{prefix}-carol"


async def test_callers_show_when_they_last_acted(session: AsyncSession) -> None:
    busy, _ = await create_caller(session, "busy", ["provision"], [])
    await create_caller(session, "idle", ["read"], [])
    await record_event(
        session,
        origin="CONFIG_API",
        actor=Actor(id=str(busy.id), type="OAUTH_CLIENT", login_name="busy"),
        target=Target(id="x", name="alice", type="PROVISIONING_REQUEST"),
        action="CREATE",
    )
    entries = {entry.name: entry for entry in await callers_with_last_use(session)}
    assert entries["busy"].last_used_at is not None
    assert entries["idle"].last_used_at is None


async def test_a_timeline_holds_the_requests_events_and_not_its_neighbours(
    session: AsyncSession,
) -> None:
    mine, other = await add_requests(session, 2)
    worker = Actor(id="tsprov", type="AUTOMATED_WORKER", login_name="tsprov")
    for request, action in ((mine, "CREATE"), (other, "CREATE"), (mine, "UPDATE")):
        await record_event(
            session,
            origin="CONTROL",
            actor=worker,
            target=Target(id=str(request.id), name=request.user_id, type="PROVISIONING_REQUEST"),
            action=action,
            user_id=request.user_id,
        )
    mine.created_at = mine.updated_at = datetime.now(UTC)
    timeline = await request_timeline(session, mine.id)
    assert [event["action"] for event in timeline.events] == ["CREATE", "UPDATE"]
    assert {event["target"]["id"] for event in timeline.events} == {str(mine.id)}


async def test_bounded_verify_walks_only_the_last_events_and_the_lag_is_counted(
    session: AsyncSession,
) -> None:
    events = [await append_at(session, T0 + timedelta(minutes=n)) for n in range(12)]
    assert await sealer_lag(session) == 12
    await seal_now(session)
    assert await sealer_lag(session) == 0
    report = await verify_recent(session, signer=None, last=5)
    assert (report.ok, report.checked) == (True, 5)
    edit = text("UPDATE audit_event SET action_details = 'edited' WHERE seq = :seq")
    await session.execute(edit, {"seq": events[2].seq})  # before the stretch walked
    assert (await verify_recent(session, signer=None, last=5)).ok
    await session.execute(edit, {"seq": events[9].seq})  # inside it
    late = await verify_recent(session, signer=None, last=5)
    assert (late.ok, late.first_bad_event) == (False, str(events[9].id))


async def test_bounded_verify_names_a_missing_starting_seal_rather_than_walking_it_all(
    session: AsyncSession,
) -> None:
    for n in range(8):
        await append_at(session, T0 + timedelta(minutes=n))
    await seal_now(session)
    head = await verify_recent(session, signer=None, last=3)
    assert (head.ok, head.checked) == (True, 3)
    position = await session.scalar(text("SELECT max(position) - 3 FROM audit_seal"))
    await session.execute(text("DELETE FROM audit_seal WHERE position = :p"), {"p": position})

    report = await verify_recent(session, signer=None, last=3)

    assert (report.ok, report.checked) == (False, 0)
    assert report.reason is not None
    assert report.reason.startswith("missing")


@contextmanager
def captured(connection: AsyncConnection) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        statements.append((statement, parameters))

    event.listen(connection.sync_connection, "before_cursor_execute", keep)
    try:
        yield statements
    finally:
        event.remove(connection.sync_connection, "before_cursor_execute", keep)


async def plan_of(connection: AsyncConnection, read: Callable[[], Awaitable[object]]) -> str:
    """The plan of the last statement ``read`` sends, with sequential scans ruled out, so a
    missing index shows as a Seq Scan and a missing order as a Sort."""
    with captured(connection) as statements:
        await read()
    statement, parameters = statements[-1]
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    await driver.execute("SET LOCAL enable_seqscan = off")
    rows = await driver.fetch("EXPLAIN " + statement, *(parameters or ()))
    return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize(
    "wanted",
    [
        RequestFilter(),
        RequestFilter(user_id="user1"),
        RequestFilter(created_by="caller0"),
        RequestFilter(status=RequestStatus.READY),
        RequestFilter(created_from=T0, created_until=T0 + timedelta(days=1)),
    ],
)
async def test_each_request_list_is_an_index_range_without_a_sort(
    session: AsyncSession, db_connection: AsyncConnection, wanted: RequestFilter
) -> None:
    await add_requests(session, 8)
    first = await requests_page(session, wanted, 1, None)
    assert first.next_cursor is not None
    plan = await plan_of(
        db_connection, lambda: requests_page(session, wanted, 1, first.next_cursor)
    )
    # One index range: every condition, the cursor's included, is an Index Cond; nothing is
    # filtered row by row or sorted afterwards.
    assert "Index Cond" in plan
    assert "Seq Scan" not in plan
    assert "Filter" not in plan
    assert "Sort" not in plan


async def test_the_users_and_callers_lists_are_index_reads(
    session: AsyncSession, db_connection: AsyncConnection
) -> None:
    await ensure_user(session, Actor(id="o", type="USER", login_name="o"), "zed", origin="X")
    users_plan = await plan_of(db_connection, lambda: users_page(session, "a", 10))
    await create_caller(session, f"c{uuid.uuid4().hex[:8]}", ["read"], [])
    callers_plan = await plan_of(db_connection, lambda: callers_with_last_use(session))
    for plan in (users_plan, callers_plan):
        assert "Seq Scan on provisioning_request" not in plan
        assert "Seq Scan on audit_event" not in plan
    assert "ix_audit_event_actor" in callers_plan
