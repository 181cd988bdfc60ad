"""The OpenAPI side of problems: each route's error answers, documented with examples."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

from service.web.errors import Unauthorized
from service.web.pages import render_page
from service.web.problem import Problem
from service.web.problem_codes import ERROR_CODES, ERROR_STATUS, PROBLEM_JSON, problem_for_code

# Every caller route authenticates against the database before anything else, so these can
# answer any of them (a flood of refused keys turns into rate_limited); and any path answers
# a method it does not take, a body too large or too slow, or a request the server cannot
# read at all, before a route sees it.
ALWAYS_POSSIBLE = (
    "unauthorized",
    "forbidden",
    "rate_limited",
    "database_unavailable",
    "internal_error",
    "method_not_allowed",
    "bad_request",
    "payload_too_large",
    "body_too_slow",
)
# What any route that calls Tailscale can answer when that call fails.
UPSTREAM_FAILURES = ("upstream_unavailable", "upstream_refused", "upstream_oauth_error")
_EXAMPLE_EXTRAS: dict[str, dict[str, Any]] = {
    "validation_failed": {
        "errors": [{"loc": ["body", "hostname"], "msg": "String should match pattern '…'"}]
    },
    "not_ready": {"request_status": "awaiting_consent"},
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": 'Always `Bearer realm="tsprov"`.',
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer"},
        }
    },
    503: {
        "Retry-After": {
            "description": "Seconds to wait before retrying, when known.",
            "schema": {"type": "integer"},
        }
    },
}


def problem_schemas() -> dict[str, Any]:
    """OpenAPI component schemas for ``Problem``: FastAPI only collects models routes return."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    nested: dict[str, Any] = schema.pop("$defs", {})
    return {**nested, "Problem": schema}


def problem_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for a caller route's problem answers: one per status, each code explained.

    The codes every caller route can answer are added. Listing a 422 code also replaces
    FastAPI's default 422 entry, whose schema is not what tsprov sends.
    """
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys((*codes, *ALWAYS_POSSIBLE)):
        by_status.setdefault(ERROR_STATUS[code], []).append(code)
    return {status: _status_entry(status, listed) for status, listed in sorted(by_status.items())}


def _status_entry(status: int, codes: list[str]) -> dict[str, Any]:
    listed = "\n".join(f"- `{code}`: {ERROR_CODES[code]}" for code in codes)
    examples = {code: {"summary": code, "value": _example_problem(code)} for code in codes}
    entry: dict[str, Any] = {
        "description": f"application/problem+json, `code` one of:\n{listed}",
        "content": {
            PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}, "examples": examples}
        },
    }
    if status in _HEADERS:
        entry["headers"] = _HEADERS[status]
    return entry


def _example_problem(code: str) -> dict[str, Any]:
    """A body as tsprov sends it for ``code``, for the documentation."""
    if code == "unauthorized":
        return Unauthorized().body()
    return problem_for_code(code, ERROR_CODES[code], extra=_EXAMPLE_EXTRAS.get(code)).body()


def page_responses(pages: dict[int | str, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for a browser route's answers, each an HTML page a person reads.

    The ``default`` entry also stands in for FastAPI's JSON 422, which these routes never
    send: a malformed link or callback gets a 400 page.
    """
    entries = {status: _html_page(description) for status, description in pages.items()}
    entries["default"] = _html_page("Any other failure: an HTML page that names it.")
    return entries


def _html_page(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


BEARER_SCHEME = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "A caller key, `tsprov_…`, from `tsprov callers create`.",
    }
}


def declare_bearer_auth(schema: dict[str, Any]) -> None:
    """Mark every operation that can answer 401 as taking the bearer key, so the docs'
    "Authorize" sends it; the key is read by a dependency FastAPI cannot see into."""
    schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(BEARER_SCHEME)
    for methods in schema.get("paths", {}).values():
        for operation in methods.values():
            if "401" in operation.get("responses", {}):
                operation["security"] = [{"bearerAuth": []}]


def document_problems(app: FastAPI) -> None:
    """Put the ``Problem`` schema that routes' error entries refer to into the OpenAPI document,
    and the bearer scheme the caller routes take.

    FastAPI only collects models a route returns, and problem+json answers come from handlers.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("schemas", {}).update(problem_schemas())
        _show_html_pages(schema)
        declare_bearer_auth(schema)
        return schema

    # FastAPI's documented way to extend the generated document is to replace this method.
    app.openapi = openapi  # type: ignore[method-assign]


def _show_html_pages(schema: dict[str, Any]) -> None:
    """Each HTML answer's example: the page tsprov renders, its description as the message."""
    for methods in schema.get("paths", {}).values():
        for operation in methods.values():
            for status, response in operation.get("responses", {}).items():
                page = response.get("content", {}).get("text/html")
                if page is not None and "example" not in page:
                    code = int(status) if status.isdigit() else 400
                    shown = render_page(code, HTTPStatus(code).phrase, response["description"])
                    page["example"] = bytes(shown.body).decode()
