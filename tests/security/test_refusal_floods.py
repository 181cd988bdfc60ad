"""security.md item 36: refusals are throttled per source and key prefix, and folded."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Message, Send

from service.main import create_app
from service.models import AuditEvent
from service.state import AppContext
from service.web.errors import RateLimited
from service.web.problem_pages import problem_response, send_problem
from service.web.refusals import FOLD_WINDOW_SECONDS, RefusalGuard
from tests.conftest import CallerFactory, bearer

BURST = 20
Clients = Callable[[str], httpx.AsyncClient]


def bad_key() -> str:
    return "tsprov_" + secrets.token_urlsafe(32)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(context: AppContext) -> FakeClock:
    """A still clock for the guard, so no bucket refills while a test runs."""
    fake = FakeClock()
    context.refusals = RefusalGuard(BURST, 2.0, fake)
    return fake


@pytest.fixture
async def from_address(context: AppContext, clock: FakeClock) -> AsyncIterator[Clients]:
    """``from_address("192.0.2.7")`` → a client whose requests come from that address."""
    app = create_app(context=context)
    opened: list[httpx.AsyncClient] = []

    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        opened.append(httpx.AsyncClient(transport=transport, base_url="http://tsprov.test"))
        return opened[-1]

    yield client
    for each in opened:
        await each.aclose()


async def refusal_events(session: AsyncSession) -> list[AuditEvent]:
    rows = await session.scalars(
        select(AuditEvent)
        .where(AuditEvent.event_name.like("FAILED_REQUEST.%"))
        .order_by(AuditEvent.seq)
    )
    return list(rows)


async def test_item_36_a_flood_of_bad_keys_turns_into_429_with_retry_after(
    from_address: Clients, make_caller: CallerFactory
) -> None:
    flooder = from_address("198.51.100.7")
    good = await make_caller("read")
    listing = "/v1/users/alice/provisioning-requests"
    assert (await flooder.get(listing, headers=bearer(good))).status_code == 200
    statuses = []
    for _ in range(BURST + 10):
        answer = await flooder.get("/v1/audit", headers=bearer(bad_key()))
        statuses.append(answer.status_code)
    assert statuses == [401] * BURST + [429] * 10
    assert answer.json()["code"] == "rate_limited"
    assert int(answer.headers["retry-after"]) >= 1

    # A key already known good, from the same address (a shared NAT, say), still gets through;
    # a key never seen before from a flooding address waits like the flood.
    assert (await flooder.get(listing, headers=bearer(good))).status_code == 200
    newcomer = await make_caller("read")
    assert (await flooder.get(listing, headers=bearer(newcomer))).status_code == 429


def test_item_36_requests_in_flight_count_against_the_burst() -> None:
    # A flood arrives all at once: its first requests are still looking their keys up when
    # the next ones come, before any refusal has taken a token. Only the burst's worth may
    # be on their way to a lookup; the rest get their 429 before routing.
    guard, source = RefusalGuard(BURST, 2.0, FakeClock()), "198.51.100.12"
    with contextlib.ExitStack() as in_flight:
        for _ in range(BURST):
            key = bad_key()
            assert not guard.throttled_before_lookup(source, key, counting_in_flight=True)
            in_flight.enter_context(guard.let_through(source, key))
        assert guard.throttled_before_lookup(source, bad_key(), counting_in_flight=True)
        # The dependency that looks keys up, itself one of those in flight, still may.
        assert not guard.throttled_before_lookup(source, bad_key())
    assert not guard.throttled_before_lookup(source, bad_key(), counting_in_flight=True)


def test_item_36_a_request_whose_key_proved_good_stops_counting_against_the_burst() -> None:
    # Callers behind one address (a shared NAT) holding long-polls with working keys must
    # not use up the burst of a newcomer from the same address.
    guard, source = RefusalGuard(BURST, 2.0, FakeClock()), "198.51.100.13"
    with contextlib.ExitStack() as long_polls:
        for _ in range(BURST):
            key = bad_key()  # unknown here until it authenticates
            counted = long_polls.enter_context(guard.let_through(source, key))
            guard.authenticated(key)
            counted.release()
        assert not guard.throttled_before_lookup(source, bad_key(), counting_in_flight=True)


async def test_item_36_one_key_prefix_is_throttled_from_any_address(from_address: Clients) -> None:
    key = bad_key()
    statuses = [
        (await from_address(f"203.0.113.{n}").get("/v1/audit", headers=bearer(key))).status_code
        for n in range(1, BURST + 6)
    ]
    assert statuses == [401] * BURST + [429] * 5


async def test_item_36_refusals_fold_into_one_event_per_source_per_minute(
    from_address: Clients, context: AppContext, clock: FakeClock, session: AsyncSession
) -> None:
    flooder, other = from_address("198.51.100.9"), from_address("198.51.100.10")
    for _ in range(50):
        await flooder.get("/v1/audit", headers=bearer(bad_key()))
    await other.get("/v1/audit")
    assert len(await refusal_events(session)) == 2  # the first from each address

    clock.now += FOLD_WINDOW_SECONDS
    await flooder.get("/v1/audit")  # a new minute: the last one's count, then this one
    events = await refusal_events(session)
    assert len(events) == 4
    folded, fresh = events[2], events[3]
    assert folded.new["count"] == 49
    assert folded.new["source"] == "198.51.100.9"
    assert "49 more refusals from 198.51.100.9" in folded.action_details
    assert fresh.new is None

    await context.refusals.flush(context.sessions, everything=True)
    assert len(await refusal_events(session)) == 4  # nothing else was folded


async def test_item_36_junk_callbacks_are_throttled_with_a_page(from_address: Clients) -> None:
    junk = from_address("198.51.100.11")
    answers = [await junk.get("/callback", params={"state": "x", "code": "y"}) for _ in range(25)]
    assert [answer.status_code for answer in answers] == [400] * BURST + [429] * 5
    last = answers[-1]
    assert last.headers["content-type"].startswith("text/html")
    assert int(last.headers["retry-after"]) >= 1


async def test_item_36_the_early_429_is_the_problem_answer_byte_for_byte() -> None:
    limited = RateLimited("Too many refused requests; retry later.", headers={"Retry-After": "3"})
    messages: dict[str, list[Message]] = {"early": [], "problem": []}

    def keeper(name: str) -> Send:
        async def send(message: Message) -> None:
            messages[name].append(message)

        return send

    async def no_body() -> Message:
        return {"type": "http.request", "body": b""}

    await send_problem(limited, keeper("early"))
    await problem_response(limited)({"type": "http"}, no_body, keeper("problem"))
    early, problem = messages["early"], messages["problem"]
    assert early[1]["body"] == problem[1]["body"]
    assert early[0]["status"] == problem[0]["status"] == 429
    assert sorted(early[0]["headers"]) == sorted(problem[0]["headers"])
