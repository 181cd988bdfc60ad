"""Exception handlers: problem+json for the API, plain pages for browsers, no echoes."""

from __future__ import annotations

import logging
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from service.crypto import DecryptionError
from service.errors import (
    BrowserError,
    DatabaseUnavailable,
    ProblemError,
    UpstreamFailure,
    ValidationFailed,
)
from service.pages import render_page
from service.tailscale import TailscaleError

log = logging.getLogger("tsprov.errors")
PROBLEM_JSON = "application/problem+json"
UPSTREAM_STATUS = {"consent_required": 409, "upstream_refused": 502, "upstream_oauth_error": 502}


def problem_response(error: ProblemError) -> JSONResponse:
    return JSONResponse(
        error.body(), status_code=error.status, headers=error.headers, media_type=PROBLEM_JSON
    )


def _is_browser(request: Request) -> bool:
    return request.url.path in ("/authorize", "/callback", "/done")


def _safe_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Pydantic's errors carry the rejected input, which may be a secret: keep place and reason.
    return [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", ""))}
        for error in exc.errors()
    ]


async def _on_problem(request: Request, exc: Exception) -> Response:
    error = cast(ProblemError, exc)
    if _is_browser(request):
        return render_page(error.status, error.title, error.detail)
    return problem_response(error)


async def _on_validation(request: Request, exc: Exception) -> Response:
    invalid = cast(RequestValidationError, exc)
    if _is_browser(request):
        return render_page(400, "Invalid link", "This link is incomplete or malformed.")
    errors = _safe_errors(invalid)
    return problem_response(ValidationFailed("The request is invalid.", extra={"errors": errors}))


async def _on_http(request: Request, exc: Exception) -> Response:
    http_error = cast(HTTPException, exc)
    if _is_browser(request):
        return render_page(http_error.status_code, "Error", str(http_error.detail))
    error = ProblemError(str(http_error.detail), headers=dict(http_error.headers or {}))
    error.status, error.code = http_error.status_code, _http_code(http_error.status_code)
    error.title = "Error"
    return problem_response(error)


def _http_code(status: int) -> str:
    return {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
        status, "bad_request"
    )


async def _on_browser(_request: Request, exc: Exception) -> Response:
    error = cast(BrowserError, exc)
    return render_page(error.status, error.title, error.message)


async def _on_upstream(request: Request, exc: Exception) -> Response:
    error = cast(TailscaleError, exc)
    context = getattr(request.app.state, "context", None)
    if context is not None:
        context.metrics.upstream_failures.labels(error.code).inc()
    status = UPSTREAM_STATUS.get(error.code, 503)
    headers = {"Retry-After": str(max(1, round(error.retry_after)))} if error.retry_after else {}
    detail = "Tailscale could not complete the request; please retry later."
    return await _on_problem(
        request, UpstreamFailure(detail, code=error.code, status=status, headers=headers)
    )


async def _on_database(request: Request, exc: Exception) -> Response:
    # Never echo the statement or parameters: only the class reaches the log.
    log.warning("database unavailable: %s", type(exc).__name__)
    error = DatabaseUnavailable("The database is unavailable; retry later.")
    error.headers["Retry-After"] = "1"
    return await _on_problem(request, error)


async def _on_undecryptable(request: Request, exc: Exception) -> Response:
    # A sealed value no key in the ring opens: a removed key or a tampered row. Loud in the
    # log for operators; the caller learns only that nothing was handed out.
    log.error("a sealed value could not be opened", exc_info=exc)
    error = ProblemError("A stored secret could not be decrypted; nothing was handed out.")
    error.status, error.code, error.title = 500, "decryption_failed", "Decryption failed"
    return await _on_problem(request, error)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    error = ProblemError("An unexpected error occurred.")
    error.status, error.code, error.title = 500, "internal_error", "Internal error"
    return await _on_problem(request, error)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(BrowserError, _on_browser)
    app.add_exception_handler(TailscaleError, _on_upstream)
    app.add_exception_handler(DecryptionError, _on_undecryptable)
    for db_error in (PoolTimeout, OperationalError, DBAPIError, OSError):
        app.add_exception_handler(db_error, _on_database)
    app.add_exception_handler(Exception, _on_unexpected)
