"""The OpenAPI document tells the truth about errors: every code, in the shape tsprov sends."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service.main import create_app
from service.settings import Settings
from service.web.problem import Problem
from service.web.problem_codes import ERROR_CODES, ERROR_STATUS
from tests.conftest import CallerFactory, bearer

Operation = tuple[str, str, dict[str, Any]]
LISTED_CODE = re.compile(r"^- `([a-z_]+)`:", re.MULTILINE)


@pytest.fixture
def document(settings: Settings) -> dict[str, Any]:
    openapi: dict[str, Any] = create_app(settings).openapi()
    return openapi


def operations(document: dict[str, Any], prefix: str = "") -> Iterator[Operation]:
    for path, methods in document["paths"].items():
        if path.startswith(prefix):
            for method, operation in methods.items():
                yield path, method, operation


def documented_codes(operation: dict[str, Any]) -> dict[str, str]:
    """Each problem code an operation lists, with the status it is listed under."""
    return {
        code: status
        for status, response in operation["responses"].items()
        for code in LISTED_CODE.findall(response.get("description", ""))
    }


def test_every_caller_operation_documents_problem_json_errors(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document, "/v1/"):
        failures = {s: r for s, r in operation["responses"].items() if not s.startswith("2")}
        assert {"401", "403", "500", "503"} <= set(failures), (method, path)
        for status, response in failures.items():
            content = response["content"]
            assert list(content) == ["application/problem+json"], (method, path, status)
            schema = content["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}
            for example in content["application/problem+json"]["examples"].values():
                assert example["value"]["status"] == int(status)
                Problem.model_validate(example["value"])


def test_listed_codes_sit_under_their_status(document: dict[str, Any]) -> None:
    for _, _, operation in operations(document, "/v1/"):
        for code, status in documented_codes(operation).items():
            assert int(status) == ERROR_STATUS[code], code


def test_every_error_code_is_documented_somewhere(document: dict[str, Any]) -> None:
    descriptions = " ".join(
        response.get("description", "")
        for _, _, operation in operations(document)
        for response in operation["responses"].values()
    )
    missing = [code for code in ERROR_CODES if f"`{code}`" not in descriptions]
    assert missing == []
    assert set(ERROR_STATUS) == set(ERROR_CODES)


def test_every_operation_with_inputs_documents_our_422(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in json.dumps(document)
    for path, method, operation in operations(document, "/v1/"):
        if operation.get("parameters") or operation.get("requestBody"):
            assert "validation_failed" in documented_codes(operation), (method, path)
    field_error = document["components"]["schemas"]["FieldError"]
    assert set(field_error["properties"]) == {"loc", "msg"}


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    references = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(document))
    assert references
    assert sorted({name for name in references if name not in schemas}) == []


def test_claim_and_create_list_what_they_can_answer(document: dict[str, Any]) -> None:
    claim = documented_codes(
        document["paths"]["/v1/provisioning-requests/{request_id}/claim"]["post"]
    )
    assert {
        "idempotency_conflict",
        "idempotency_in_flight",
        "grant_revoked",
        "upstream_outcome_unknown",
        "consent_required",
        "not_ready",
        "already_claimed",
        "upstream_unavailable",
        "decryption_failed",
        "database_unavailable",
    } <= set(claim)
    create = documented_codes(
        document["paths"]["/v1/users/{user_id}/provisioning-requests"]["post"]
    )
    assert {"idempotency_conflict", "idempotency_in_flight", "validation_failed"} <= set(create)


@pytest.mark.parametrize("path", ["/authorize", "/callback"])
def test_browser_routes_document_html_pages_not_json(document: dict[str, Any], path: str) -> None:
    responses = document["paths"][path]["get"]["responses"]
    assert "422" not in responses
    assert "400" in responses
    for status, response in responses.items():
        if status != "303":
            assert list(response["content"]) == ["text/html"], status


def test_export_documents_its_incomplete_trailer(document: dict[str, Any]) -> None:
    assert "export_incomplete" in document["paths"]["/v1/audit/export"]["get"]["description"]


async def test_a_real_422_has_the_documented_shape(
    client: httpx.AsyncClient, make_caller: CallerFactory
) -> None:
    admin = await make_caller("admin")
    response = await client.put(
        "/v1/users/alice", headers=bearer(admin), json={"display_name": "a\u0085b", "x": 1}
    )
    assert response.status_code == 422
    problem = Problem.model_validate(response.json())
    assert problem.errors is not None
    assert {tuple(error.loc) for error in problem.errors} == {
        ("body", "display_name"),
        ("body", "x"),
    }


def _shows_example(media: dict[str, Any], schemas: dict[str, Any]) -> bool:
    if "example" in media or "examples" in media:
        return True
    reference = media.get("schema", {}).get("$ref", "")
    return bool(reference) and "examples" in schemas[reference.rsplit("/", 1)[-1]]


def test_every_operation_shows_request_and_response_examples(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    missing = []
    for path, method, operation in operations(document):
        body = operation.get("requestBody")
        if body is not None and not any(
            _shows_example(media, schemas) for media in body["content"].values()
        ):
            missing.append(f"{method} {path} request")
        for status, response in operation["responses"].items():
            for media_type, media in response.get("content", {}).items():
                if not _shows_example(media, schemas):
                    missing.append(f"{method} {path} {status} {media_type}")
    assert missing == []


def test_operations_endpoints_document_their_answers(document: dict[str, Any]) -> None:
    readyz = document["paths"]["/readyz"]["get"]["responses"]
    assert readyz["503"]["content"]["application/json"]["example"]["status"] == "not_ready"
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    (exposition,) = metrics.values()
    assert "tsprov_http_requests_total" in exposition["example"]
