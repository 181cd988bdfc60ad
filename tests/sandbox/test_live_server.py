"""The sandbox as a real HTTP server: lost responses, latency, drip, and a whole device path."""

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from sandbox.state import SandboxState
from tests.helpers.sandbox_flows import (
    ADMIN,
    APP_ID,
    APP_SECRET,
    AUTHORIZE,
    OBSERVER_ID,
    OBSERVER_SECRET,
    REDIRECT_URI,
    TOKEN,
    authorize_params,
    bearer,
    hidden_fields,
    pkce_pair,
    redirect_query,
)
from tests.helpers.servers import ThreadedServer


@pytest.fixture
def http(live_sandbox: ThreadedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_sandbox.url, timeout=5) as client:
        yield client


def code_exchange(http: httpx.Client, code: str, verifier: str) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    return http.post(TOKEN, data=data, auth=(APP_ID, APP_SECRET))


def approve(http: httpx.Client, **overrides: str) -> dict[str, str]:
    page = http.get(AUTHORIZE, params=authorize_params(**overrides))
    assert page.status_code == 200
    form = {**hidden_fields(page.text), "login": "bob@example.com", "decision": "approve"}
    return redirect_query(http.post(AUTHORIZE, data=form))


def test_health_over_http(http: httpx.Client) -> None:
    assert http.get("/sandbox/health").status_code == 200


def test_consent_token_join_and_observe(http: httpx.Client, state: SandboxState) -> None:
    verifier, challenge = pkce_pair()
    query = approve(http, code_challenge=challenge, code_challenge_method="S256")
    token = code_exchange(http, query["code"], verifier)
    assert token.status_code == 200
    auth_key = token.json()["access_token"]
    joined = http.post("/sandbox/join", json={"authKey": auth_key, "hostname": "laptop"})
    assert joined.status_code == 200
    observer = http.post(
        TOKEN, data={"grant_type": "client_credentials"}, auth=(OBSERVER_ID, OBSERVER_SECRET)
    ).json()["access_token"]
    devices = http.get("/api/v2/tailnet/-/devices", headers=bearer(observer)).json()["devices"]
    assert [(d["nodeId"], d["user"]) for d in devices] == [
        (joined.json()["nodeId"], "bob@example.com")
    ]


def test_lost_response_drops_the_connection_after_doing_the_work(
    http: httpx.Client, state: SandboxState
) -> None:
    verifier, challenge = pkce_pair()
    code = approve(http, code_challenge=challenge, code_challenge_method="S256")["code"]
    http.post("/sandbox/faults", json={"route": "token", "lost_response": True, "fail_times": 1})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        code_exchange(http, code, verifier)
    with state.lock:
        (key,) = state.keys.values()
    assert key.revoked is None
    retry = code_exchange(http, code, verifier)
    assert retry.json()["error"] == "invalid_grant"
    assert key.revoked is not None
    log = http.get("/sandbox/requests", params={"route": "token"}).json()["requests"]
    assert [(entry["status"], entry["lost"]) for entry in log] == [(None, True), (400, False)]


def test_latency_delays_the_answer_and_trips_client_timeouts(http: httpx.Client) -> None:
    http.post("/sandbox/faults", json={"route": "devices", "latency_seconds": 1.0})
    started = time.monotonic()
    assert http.get("/api/v2/tailnet/-/devices", headers=ADMIN).status_code == 200
    assert time.monotonic() - started >= 1.0
    with pytest.raises(httpx.ReadTimeout):
        http.get("/api/v2/tailnet/-/devices", headers=ADMIN, timeout=0.2)
    started = time.monotonic()
    assert http.get("/api/v2/tailnet/-/keys", headers=ADMIN).status_code == 200
    assert time.monotonic() - started < 0.5


def test_drip_spreads_the_body_over_time(http: httpx.Client) -> None:
    http.post("/sandbox/faults", json={"route": "keys", "drip_seconds": 1.0, "fail_times": 1})
    started = time.monotonic()
    with http.stream("GET", "/api/v2/tailnet/-/keys", headers=ADMIN) as response:
        first_headers = time.monotonic() - started
        body = response.read()
    assert first_headers < 0.5
    assert time.monotonic() - started >= 0.9
    assert body == b'{"keys":[]}'


def test_retry_after_survives_real_http(http: httpx.Client) -> None:
    rule = {"route": "token", "status": 429, "retry_after": "Wed, 21 Oct 2099 07:28:00 GMT"}
    http.post("/sandbox/faults", json=rule)
    response = http.post(TOKEN, data={"grant_type": "client_credentials"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "Wed, 21 Oct 2099 07:28:00 GMT"


def test_threaded_server_serves_any_asgi_app() -> None:
    async def hello(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hello"})

    with ThreadedServer(hello, lifespan="off") as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert httpx.get(server.url).text == "hello"
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url, timeout=1)


async def test_concurrent_redemptions_of_one_code_yield_one_key(
    live_sandbox: ThreadedServer, state: SandboxState
) -> None:
    async with httpx.AsyncClient(base_url=live_sandbox.url, timeout=5) as client:
        page = await client.get(AUTHORIZE, params=authorize_params())
        form = {**hidden_fields(page.text), "login": "bob@example.com", "decision": "approve"}
        code = redirect_query(await client.post(AUTHORIZE, data=form))["code"]
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
        answers = await asyncio.gather(
            *(client.post(TOKEN, data=data, auth=(APP_ID, APP_SECRET)) for _ in range(8))
        )
    assert sorted(answer.status_code for answer in answers) == [200] + [400] * 7
    with state.lock:
        assert len(state.keys) == 1
