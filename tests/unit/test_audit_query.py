"""The audit query: Tailscale's filters, time order, keyset cursors, the streamed export."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.events import Target
from service.audit.query import (
    AuditFilter,
    build_filter,
    decode_cursor,
    query_audit,
    stream_audit,
)
from service.web.errors import ValidationFailed
from tests.unit.audit_support import OTHER_CALLER, append_at

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def window(**filters: object) -> AuditFilter:
    return AuditFilter(T0, T0 + timedelta(hours=1), **filters)  # type: ignore[arg-type]


async def names(session: AsyncSession, audit_filter: AuditFilter) -> list[str]:
    page = await query_audit(session, audit_filter, limit=500)
    return [log["target"]["name"] for log in page.logs]


@pytest.fixture
async def scene(session: AsyncSession) -> None:
    """Six events across the window and two outside it."""
    node = Target(id="n-100", name="alice-box.example.ts.net", type="NODE")
    await append_at(session, T0 - timedelta(seconds=1), user_id="early")
    await append_at(
        session, T0, user_id="alice", target=Target("r-1", "alice", "PROVISIONING_REQUEST")
    )
    await append_at(session, T0 + timedelta(minutes=5), user_id="alice", target=node)
    await append_at(
        session, T0 + timedelta(minutes=10), actor=OTHER_CALLER, user_id="bob",
        target=Target("r-2", "bob", "PROVISIONING_REQUEST", "STATUS"), action="UPDATE",
    )  # fmt: skip
    await append_at(
        session, T0 + timedelta(minutes=20), user_id="bob", target=Target("k-7", "bob", "API_KEY")
    )
    await append_at(
        session, T0 + timedelta(minutes=30), actor=OTHER_CALLER, user_id="carol",
        target=Target("g-3", "carol", "GRANT"), action="REVOKE",
    )  # fmt: skip
    await append_at(session, T0 + timedelta(minutes=59, seconds=59), user_id="dave")
    await append_at(session, T0 + timedelta(hours=1), user_id="late")


@pytest.mark.usefixtures("scene")
async def test_window_is_start_inclusive_end_exclusive_in_time_order(session: AsyncSession) -> None:
    page = await query_audit(session, window(), limit=100)
    assert [log["userId"] for log in page.logs] == ["alice", "alice", "bob", "bob", "carol", "dave"]
    times = [log["eventTime"] for log in page.logs]
    assert times == sorted(times)
    assert page.next_cursor is None


@pytest.mark.usefixtures("scene")
async def test_actor_filter_matches_id_or_login_name(session: AsyncSession) -> None:
    assert await names(session, window(actors=["ci-runner"])) == ["bob", "carol"]
    assert await names(session, window(actors=["c-2"])) == ["bob", "carol"]
    assert await names(session, window(actors=["nobody"])) == []


@pytest.mark.usefixtures("scene")
async def test_target_filter_matches_id_or_name_and_ors_repeats(session: AsyncSession) -> None:
    assert await names(session, window(targets=["n-100"])) == ["alice-box.example.ts.net"]
    assert await names(session, window(targets=["alice-box.example.ts.net", "k-7"])) == [
        "alice-box.example.ts.net",
        "bob",
    ]


@pytest.mark.usefixtures("scene")
async def test_event_filter_on_targettype_action(session: AsyncSession) -> None:
    assert await names(session, window(events=["NODE.CREATE"])) == ["alice-box.example.ts.net"]
    both = await names(session, window(events=["GRANT.REVOKE", "API_KEY.CREATE"]))
    assert both == ["bob", "carol"]


@pytest.mark.usefixtures("scene")
async def test_user_id_filter_and_filters_combine_with_and(session: AsyncSession) -> None:
    assert await names(session, window(user_id="bob")) == ["bob", "bob"]
    assert await names(session, window(user_id="bob", actors=["ci-runner"])) == ["bob"]
    assert await names(session, window(user_id="alice", events=["GRANT.REVOKE"])) == []


@pytest.mark.usefixtures("scene")
async def test_cursor_walks_every_event_once(session: AsyncSession) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = await query_audit(session, window(), limit=4, cursor=cursor)
        seen += [log["id"] for log in page.logs]
        cursor = page.next_cursor
        if cursor is None:
            break
    everything = await query_audit(session, window(), limit=500)
    assert seen == [log["id"] for log in everything.logs]
    assert len(seen) == 6


async def test_cursor_breaks_ties_on_identical_times(session: AsyncSession) -> None:
    for index in range(5):
        await append_at(session, T0, user_id=f"u{index}")
    first = await query_audit(session, window(), limit=2)
    rest = await query_audit(session, window(), limit=10, cursor=first.next_cursor)
    assert [log["userId"] for log in first.logs + rest.logs] == [f"u{i}" for i in range(5)]


@pytest.mark.usefixtures("scene")
async def test_tampered_cursor_is_refused(session: AsyncSession) -> None:
    page = await query_audit(session, window(), limit=2)
    assert page.next_cursor is not None
    raw = bytearray(base64.urlsafe_b64decode(page.next_cursor + "=" * (-len(page.next_cursor) % 4)))
    raw[15] ^= 0x01  # the seq moves by one; the check no longer matches
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    for bad in (forged, "not-a-cursor", "A", page.next_cursor[:-2], page.next_cursor + "AA"):
        with pytest.raises(ValidationFailed):
            decode_cursor(window(), bad)


@pytest.mark.usefixtures("scene")
async def test_cursor_of_another_query_is_refused(session: AsyncSession) -> None:
    page = await query_audit(session, window(), limit=2)
    assert page.next_cursor is not None
    with pytest.raises(ValidationFailed, match="this query"):
        await query_audit(session, window(user_id="bob"), limit=2, cursor=page.next_cursor)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-03-01", "2026-03-02T00:00:00Z"),  # a date alone
        ("2026-03-01T00:00:00", "2026-03-02T00:00:00Z"),  # no offset
        ("1772366400", "2026-03-02T00:00:00Z"),  # epoch seconds
        ("2026-03-01T00:00:00Z", "2026-02-30T00:00:00Z"),  # no such day
        ("2026-03-02T00:00:00Z", "2026-03-01T00:00:00Z"),  # start after end
    ],
)
def test_bounds_must_be_rfc3339_and_ordered(start: str, end: str) -> None:
    with pytest.raises(ValidationFailed):
        build_filter(start, end)


def test_bounds_accept_offsets_and_nanoseconds() -> None:
    built = build_filter("2026-03-01T13:00:00.123456789+01:00", "2026-03-01t12:00:00.5z")
    assert built.start == datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert built.end == datetime(2026, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("0001-01-01T00:00:00+01:00", "2026-03-02T00:00:00Z"),  # year 0 in UTC
        ("2026-03-01T00:00:00Z", "9999-12-31T23:59:59-01:00"),  # year 10000 in UTC
    ],
)
def test_bounds_outside_utc_years_1_to_9999_are_refused(start: str, end: str) -> None:
    with pytest.raises(ValidationFailed, match="outside the years"):
        build_filter(start, end)


def test_bounds_at_the_edges_of_utc_are_accepted_in_utc() -> None:
    built = build_filter("0001-01-01T00:59:59-01:00", "9999-12-31T23:59:59.999999Z")
    assert built.start == datetime(1, 1, 1, 1, 59, 59, tzinfo=UTC)
    assert built.start.utcoffset() == timedelta(0)
    assert built.end == datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


async def test_export_streams_every_event_in_batches(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        for index in range(23):
            await append_at(session, T0 + timedelta(seconds=index), user_id=f"u{index:02d}")
    exported = [log["userId"] async for log in stream_audit(sessions, window(), batch_size=5)]
    assert exported == [f"u{index:02d}" for index in range(23)]
    only = [log["userId"] async for log in stream_audit(sessions, window(user_id="u07"))]
    assert only == ["u07"]
