"""security.md item 35: bodies are bounded in size and arrival time before anything runs."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.main import create_app
from service.settings import Settings
from tests.helpers.servers import ThreadedServer

LIMIT = 65536
BAD_KEY = {"Authorization": "Bearer tsprov_" + "x" * 43}
CREATE_PATH = "/v1/users/alice/provisioning-requests"


async def audit_rows(session: AsyncSession) -> int:
    return int(await session.scalar(text("SELECT count(*) FROM audit_event")) or 0)


async def test_item_35_a_body_over_64_kib_is_refused_before_the_key_is_checked(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    before = await audit_rows(session)
    # Not JSON either: a parser that ran first would answer 422, a key check 401.
    answer = await client.post(CREATE_PATH, content=b"{" * (LIMIT + 1), headers=BAD_KEY)
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "payload_too_large"
    assert await audit_rows(session) == before  # no database work: not even the refusal

    at_limit = await client.post(CREATE_PATH, content=b"{" * LIMIT, headers=BAD_KEY)
    assert at_limit.status_code == 401


async def test_item_35_a_page_gets_a_plain_page_for_an_oversized_body(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.request("GET", "/callback", content=b"x" * (LIMIT + 1))
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


@pytest.fixture
def server(settings: Settings) -> Iterator[ThreadedServer]:
    """tsprov over real HTTP, so bodies can be chunked or dripped byte by byte."""
    tight = settings.model_copy(update={"body_timeout_seconds": 1.0})
    with ThreadedServer(create_app(tight, run_background=False)) as running:
        yield running


def exchange(server: ThreadedServer, head: bytes, body_parts: list[bytes]) -> bytes:
    """Send a raw request, part by part, and read what the server answers."""
    with socket.create_connection((server.host, server.port), timeout=30) as raw:
        raw.sendall(head)
        for part in body_parts:
            try:
                raw.sendall(part)
            except OSError:
                break  # the server answered and closed while parts were still going out
        received = b""
        while chunk := raw.recv(65536):
            received += chunk
        return received


def test_item_35_a_chunked_body_without_length_is_cut_off_past_the_limit(
    server: ThreadedServer,
) -> None:
    head = (
        f"POST {CREATE_PATH} HTTP/1.1\r\nHost: tsprov.test\r\n"
        "Authorization: Bearer nonsense\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"4000\r\n" + b"{" * 0x4000 + b"\r\n"
    # 64 KiB in four chunks, then one byte more; the body would go on, but the answer
    # must not wait for its end.
    answer = exchange(server, head, [chunk] * 4 + [b"1\r\n{\r\n"])
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"payload_too_large" in answer


def test_item_35_a_body_that_drips_in_is_cut_off(server: ThreadedServer) -> None:
    head = (
        f"POST {CREATE_PATH} HTTP/1.1\r\nHost: tsprov.test\r\n"
        "Authorization: Bearer nonsense\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    # Ten bytes, then silence: the whole body never arrives within the second allowed.
    answer = exchange(server, head, [b"{" * 10])
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"body_too_slow" in answer
