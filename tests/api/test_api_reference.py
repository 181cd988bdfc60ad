"""The API reference a newcomer reads: every operation, field and code explained, with
examples, the bearer scheme declared, and the pages it links to served."""

from __future__ import annotations

import json
from collections.abc import Iterator
from html import unescape
from typing import Any

import httpx
import pytest

from service.main import create_app
from service.settings import Settings
from service.web.problem_codes import PROBLEMS
from tests.conftest import CallerFactory, bearer

Operation = tuple[str, str, dict[str, Any]]


@pytest.fixture
def document(settings: Settings) -> dict[str, Any]:
    openapi: dict[str, Any] = create_app(settings).openapi()
    return openapi


def operations(document: dict[str, Any]) -> Iterator[Operation]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_every_operation_has_a_summary_and_a_description(document: dict[str, Any]) -> None:
    bare = [
        (method, path)
        for path, method, operation in operations(document)
        if not operation.get("summary") or not operation.get("description")
    ]
    assert bare == []


def test_every_field_and_parameter_is_described(document: dict[str, Any]) -> None:
    bare = [
        f"{name}.{field}"
        for name, schema in document["components"]["schemas"].items()
        for field, spec in schema.get("properties", {}).items()
        if "description" not in spec
    ]
    bare += [
        f"{method} {path} {parameter['name']}"
        for path, method, operation in operations(document)
        for parameter in operation.get("parameters", [])
        if not parameter.get("description")
    ]
    assert bare == []


def _has_example(content: dict[str, Any], schemas: dict[str, Any]) -> bool:
    """JSON and NDJSON answers show an example; a browser's HTML page is its screenshot."""
    for media_type, media in content.items():
        if media_type == "text/html":
            return True
        if "example" in media or "examples" in media:
            return True
        name = media.get("schema", {}).get("$ref", "").rpartition("/")[2]
        if "examples" in schemas.get(name, {}):
            return True
    return False


def test_every_caller_operation_shows_an_example_request_and_answer(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    missing = []
    for path, method, operation in operations(document):
        success = [r for s, r in operation["responses"].items() if s.startswith("2")]
        answers = [r["content"] for r in success if "content" in r]
        if answers and not any(_has_example(content, schemas) for content in answers):
            missing.append(f"{method} {path} answer")
        body = operation.get("requestBody", {}).get("content")
        if body and not _has_example(body, schemas):
            missing.append(f"{method} {path} request")
    assert missing == []


def test_caller_operations_take_the_bearer_key_so_the_docs_can_send_it(
    document: dict[str, Any],
) -> None:
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, method, operation in operations(document):
        takes_key = operation.get("security") == [{"bearerAuth": []}]
        assert takes_key == path.startswith("/v1/"), (method, path)


async def test_docs_pages_load_their_assets_from_tsprov(client: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        html = await client.get(page)
        assert html.status_code == 200
        assert "cdn." not in html.text
        assert "default-src 'self'" in html.headers["content-security-policy"]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        served = await client.get(f"/docs-assets/{asset}")
        assert served.status_code == 200, asset


async def test_a_problems_type_is_a_page_tsprov_serves(
    client: httpx.AsyncClient, make_caller: CallerFactory
) -> None:
    answer = await client.get("/v1/provisioning-requests/not-a-uuid", headers=bearer("nope"))
    problem = answer.json()
    page = await client.get(problem["type"])
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "What to do" in page.text
    assert "Send `Authorization: Bearer" in unescape(page.text)


@pytest.mark.parametrize("code", sorted(PROBLEMS))
async def test_every_code_has_a_page_saying_what_to_do(
    client: httpx.AsyncClient, code: str
) -> None:
    kind = PROBLEMS[code]
    page = await client.get(f"/problems/{code}")
    assert page.status_code == 200
    text = unescape(page.text)
    assert kind.title in text
    assert kind.meaning in text
    assert kind.what_to_do in text


async def test_an_unknown_code_has_no_page(client: httpx.AsyncClient) -> None:
    page = await client.get("/problems/no_such_code")
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]


def test_what_to_do_differs_from_the_meaning_for_every_code() -> None:
    for kind in PROBLEMS.values():
        assert kind.what_to_do, kind.code
        assert kind.what_to_do != kind.meaning, kind.code
    assert len({kind.what_to_do for kind in PROBLEMS.values()}) == len(PROBLEMS)


async def test_a_body_that_is_not_json_says_where_it_broke(
    client: httpx.AsyncClient, make_caller: CallerFactory
) -> None:
    key = await make_caller("provision")
    answer = await client.post(
        "/v1/users/alice/provisioning-requests",
        headers={**bearer(key), "Content-Type": "application/json"},
        content=b'{\n  "hostname": "devbox-1",\n  "description": oops\n}',
    )
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["detail"] == "The body is not valid JSON (line 3, column 18)."
    assert problem["errors"] == [
        {"loc": ["body"], "msg": "the body is not valid JSON (line 3, column 18)"}
    ]
    assert "oops" not in json.dumps(problem)


async def test_starlettes_own_errors_carry_a_title_that_names_them(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.get("/nowhere")
    wrong_method = await client.patch("/healthz")
    assert (missing.json()["title"], missing.json()["code"]) == ("Not found", "not_found")
    assert wrong_method.json()["title"] == "Method not allowed"
    assert wrong_method.json()["type"] == "/problems/method_not_allowed"


def test_every_required_parameter_of_a_caller_operation_has_an_example(
    document: dict[str, Any],
) -> None:
    """So "Try it out" starts from a request that can be sent as it stands."""
    missing = [
        f"{method} {path} {parameter['name']}"
        for path, method, operation in operations(document)
        if path.startswith("/v1/")
        for parameter in operation.get("parameters", [])
        if parameter.get("required") and "examples" not in parameter.get("schema", {})
    ]
    assert missing == []
