"""Retries: what is retried, with which Idempotency-Key, after how long, until when."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
from scripted import REQUEST_ID, Script, claim_answer, problem, request_body

from tsprov_client import (
    AsyncClient,
    Client,
    RateLimited,
    RetryPolicy,
    ServerUnreachable,
    ServiceUnavailable,
    TsprovError,
    UnexpectedResponse,
    ValidationFailed,
)
from tsprov_client.retries import parse_retry_after

QUICK = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, deadline=timedelta(seconds=10))
CREATED = httpx.Response(201, json=request_body("awaiting_consent"))


def scripted_client(script: Script, retry: RetryPolicy = QUICK) -> Client:
    return Client("http://tsprov.test", "tsprov_testkey", retry=retry, transport=script.transport())


def test_a_503_is_retried_with_the_same_idempotency_key() -> None:
    script = Script(problem(503, "database_unavailable"), CREATED, CREATED)
    with scripted_client(script) as client:
        client.create_request("alice")
        client.create_request("alice")
    first, retry, next_call = script.idempotency_keys()
    assert first is not None
    assert retry == first
    assert next_call not in (None, first)


def test_a_claim_after_a_lost_connection_replays_with_the_same_key() -> None:
    script = Script(httpx.ConnectError("connection refused"), claim_answer())
    with scripted_client(script) as client:
        claim = client.claim(REQUEST_ID)
    assert claim.auth_key.startswith("tskey-auth-")
    assert len(set(script.idempotency_keys())) == 1


def test_retry_after_in_seconds_is_waited_out() -> None:
    script = Script(problem(429, "rate_limited", {"Retry-After": "1"}), CREATED)
    started = time.monotonic()
    with scripted_client(script) as client:
        client.create_request("alice")
    assert time.monotonic() - started >= 1.0


def test_retry_after_as_an_http_date_is_waited_out() -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=2)
    script = Script(
        problem(503, "upstream_unavailable", {"Retry-After": format_datetime(when, usegmt=True)}),
        CREATED,
    )
    started = time.monotonic()
    with scripted_client(script) as client:
        client.create_request("alice")
    # The date has whole seconds: it lies between 1 and 2 s ahead.
    assert time.monotonic() - started >= 1.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("soon", None),
        ("-3", None),
        ("", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after_values(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_a_retry_after_past_the_deadline_is_not_waited_for() -> None:
    script = Script(problem(429, "rate_limited", {"Retry-After": "60"}), CREATED)
    policy = RetryPolicy(deadline=timedelta(seconds=5))
    with scripted_client(script, policy) as client, pytest.raises(RateLimited) as refused:
        client.create_request("alice")
    assert refused.value.retry_after == 60
    assert len(script.requests) == 1


def test_retries_stop_at_the_deadline_with_the_last_error() -> None:
    unavailable = [problem(503, "service_unavailable", {"Retry-After": "1"}) for _ in range(10)]
    script = Script(*unavailable)
    policy = RetryPolicy(deadline=timedelta(seconds=2.5))
    with scripted_client(script, policy) as client, pytest.raises(ServiceUnavailable):
        client.get_request(REQUEST_ID)
    assert 2 <= len(script.requests) <= 3


def test_a_server_that_never_answers_raises_server_unreachable() -> None:
    script = Script(*[httpx.ConnectError("refused") for _ in range(3)])
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.01)
    with scripted_client(script, policy) as client, pytest.raises(ServerUnreachable) as failed:
        client.get_request(REQUEST_ID)
    assert isinstance(failed.value.__cause__, httpx.ConnectError)
    assert len(script.requests) == 3


def test_a_refusal_is_not_retried() -> None:
    script = Script(problem(422, "validation_failed"), CREATED)
    with scripted_client(script) as client, pytest.raises(ValidationFailed):
        client.create_request("alice")
    assert len(script.requests) == 1


def test_a_twin_call_still_in_flight_is_waited_for() -> None:
    script = Script(problem(409, "idempotency_in_flight"), claim_answer())
    with scripted_client(script) as client:
        client.claim(REQUEST_ID, idempotency_key="mine")
    assert script.idempotency_keys() == ["mine", "mine"]


def test_an_unknown_code_raises_the_base_error_with_its_code() -> None:
    script = Script(problem(418, "brand_new_refusal"))
    with scripted_client(script) as client, pytest.raises(TsprovError) as refused:
        client.get_request(REQUEST_ID)
    assert type(refused.value) is TsprovError
    assert (refused.value.code, refused.value.status) == ("brand_new_refusal", 418)


def test_an_answer_that_is_no_problem_is_not_echoed() -> None:
    page = httpx.Response(
        502, text="<html>proxy secret-ish page</html>", headers={"Content-Type": "text/html"}
    )
    with scripted_client(Script(page)) as client, pytest.raises(UnexpectedResponse) as failed:
        client.get_request(REQUEST_ID)
    assert failed.value.status == 502
    assert "proxy" not in str(failed.value)


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    policy = RetryPolicy(initial_backoff=1.0, max_backoff=5.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)]:
        delays = {policy.backoff(attempt) for _ in range(20)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1


async def test_the_async_client_retries_with_the_same_key() -> None:
    script = Script(problem(503, "upstream_unavailable"), httpx.ReadTimeout("slow"), claim_answer())
    async with AsyncClient(
        "http://tsprov.test", "tsprov_testkey", retry=QUICK, transport=script.transport()
    ) as client:
        await client.claim(REQUEST_ID)
    assert len(script.requests) == 3
    assert len(set(script.idempotency_keys())) == 1
