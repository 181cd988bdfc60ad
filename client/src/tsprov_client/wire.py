"""Reading tsprov's answers: success bodies as JSON, problem bodies as typed errors."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tsprov_client.errors import (
    ServerUnreachable,
    TsprovError,
    UnexpectedResponse,
    error_from_problem,
)
from tsprov_client.retries import RETRYABLE_TRANSPORT_ERRORS, parse_retry_after

PROBLEM_JSON = "application/problem+json"
CLIENT_VERSION = "0.1.0"


def new_idempotency_key() -> str:
    """A fresh key for one logical call; every retry of that call sends it again."""
    return f"tsprov-client-{uuid.uuid4()}"


def error_from_response(response: httpx.Response) -> TsprovError:
    """The typed error for a non-2xx answer; a body that is no problem is not echoed."""
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    problem = _problem_body(response)
    if problem is None:
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        return UnexpectedResponse(
            f"HTTP {response.status_code} with {kind}, not a tsprov problem",
            status=response.status_code,
            retry_after=retry_after,
        )
    return error_from_problem(response.status_code, problem, retry_after)


def _problem_body(response: httpx.Response) -> dict[str, Any] | None:
    content_type = response.headers.get("Content-Type", "")
    if not content_type.startswith((PROBLEM_JSON, "application/json")):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) and "code" in body else None


def json_object(response: httpx.Response) -> dict[str, Any]:
    """A success answer's JSON object."""
    try:
        body = response.json()
    except ValueError as exc:
        raise UnexpectedResponse(
            f"HTTP {response.status_code} with a body that is not JSON",
            status=response.status_code,
        ) from exc
    if not isinstance(body, dict):
        raise UnexpectedResponse("the answer is not a JSON object", status=response.status_code)
    return body


def caller_headers(api_key: str) -> dict[str, str]:
    """The headers every call carries; a malformed key is refused without being echoed."""
    key = api_key.strip()
    if not key or not all("\x21" <= character <= "\x7e" for character in key):
        raise ValueError("the API key is empty or holds characters no tsprov key has")
    return {
        "Authorization": f"Bearer {key}",
        "Accept": f"application/json, {PROBLEM_JSON}",
        "User-Agent": f"tsprov-client/{CLIENT_VERSION}",
    }


def transport_error(exc: httpx.HTTPError, server_url: str) -> TsprovError:
    """A failure to get any answer; the retryable kinds become ``ServerUnreachable``."""
    detail = f"{type(exc).__name__} talking to {server_url}"
    error: TsprovError
    if isinstance(exc, RETRYABLE_TRANSPORT_ERRORS):
        error = ServerUnreachable(detail)
    else:
        error = TsprovError(detail, code="transport_error")
    error.__cause__ = exc
    return error
