"""Exception handlers: problem+json for the API, plain pages for browsers, no echoes."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from http import HTTPStatus
from typing import Any, Literal, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import Send

from service.crypto.keyring import DecryptionError
from service.tailscale.client import TailscaleError
from service.web.errors import (
    BrowserError,
    Conflict,
    DatabaseUnavailable,
    DecryptionFailed,
    InternalError,
    MethodNotAllowed,
    NotFound,
    ProblemError,
    ValidationFailed,
)
from service.web.pages import render_page
from service.web.problem_codes import PROBLEM_JSON, problem_for_code

log = logging.getLogger("tsprov.errors")


def problem_response(error: ProblemError) -> JSONResponse:
    return JSONResponse(
        error.body(), status_code=error.status, headers=error.headers, media_type=PROBLEM_JSON
    )


def _encoded(error: ProblemError) -> bytes:
    # As JSONResponse encodes it (problem_response).
    return json.dumps(error.body(), ensure_ascii=False, separators=(",", ":")).encode()


# Bodies of problems with nothing added (``extra``), by code and detail: the few sent often.
_PLAIN_BODIES: dict[tuple[str, str], bytes] = {}


def _body(error: ProblemError) -> bytes:
    if error.extra:
        return _encoded(error)
    key = (error.code, error.detail)
    body = _PLAIN_BODIES.get(key)
    if body is None:
        if len(_PLAIN_BODIES) >= 16:
            _PLAIN_BODIES.clear()
        body = _PLAIN_BODIES[key] = _encoded(error)
    return body


async def send_problem(error: ProblemError, send: Send) -> None:
    """``problem_response``'s answer, written straight to the connection, a plain problem's
    body encoded once: the flood gate sends it a thousand times a second, and a response
    object built and encoded per refusal was a tenth of one."""
    body = _body(error)
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in error.headers.items()),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


BROWSER_PATHS = frozenset({"/authorize", "/callback", "/done", "/me", "/console"})
# The people's pages of service/console live under /me and /console.
BROWSER_PREFIXES = ("/problems/", "/me/", "/console/")


def is_browser_path(path: str) -> bool:
    """Whether a person's browser reads the answer (a page), not a program (problem+json)."""
    return path in BROWSER_PATHS or path.startswith(BROWSER_PREFIXES)


def _is_browser(request: Request) -> bool:
    return is_browser_path(request.url.path)


def _safe_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Pydantic's errors carry the rejected input, which may be a secret: keep place and reason.
    return [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", ""))}
        for error in exc.errors()
    ]


async def _on_problem(request: Request, exc: Exception) -> Response:
    error = cast(ProblemError, exc)
    if _is_browser(request):
        page = render_page(error.status, error.title, error.detail)
        page.headers.update(error.headers)  # Retry-After, say
        return page
    return problem_response(error)


def _json_syntax_error(exc: RequestValidationError) -> str | None:
    """Where a body that is not JSON at all broke off, as a person counts lines; else None."""
    for error in exc.errors():
        position = (error.get("loc") or ("",))[-1]
        if error.get("type") == "json_invalid" and isinstance(position, int):
            text = exc.body if isinstance(exc.body, str) else ""
            line = text.count("\n", 0, position) + 1
            column = position - text.rfind("\n", 0, position)
            return f"the body is not valid JSON (line {line}, column {column})"
    return None


async def _on_validation(request: Request, exc: Exception) -> Response:
    invalid = cast(RequestValidationError, exc)
    if _is_browser(request):
        return render_page(400, "Invalid link", "This link is incomplete or malformed.")
    syntax = _json_syntax_error(invalid)
    if syntax is not None:
        # The body is never echoed: only where it broke off.
        errors = [{"loc": ["body"], "msg": syntax}]
        return problem_response(
            ValidationFailed(f"{syntax[0].upper()}{syntax[1:]}.", extra={"errors": errors})
        )
    errors = _safe_errors(invalid)
    return problem_response(ValidationFailed("The request is invalid.", extra={"errors": errors}))


async def _on_http(request: Request, exc: Exception) -> Response:
    http_error = cast(HTTPException, exc)
    status = http_error.status_code
    kind = _HTTP_PROBLEMS.get(status, ProblemError)
    headers = dict(http_error.headers or {})
    if status == 405:
        headers["Allow"] = _allowed_methods(request)
    if _is_browser(request):
        page = render_page(status, HTTPStatus(status).phrase, str(http_error.detail))
        page.headers.update(headers)
        return page
    error = kind(str(http_error.detail), headers=headers)
    if error.status != status:
        # Starlette's own 4xx answers (a body it could not read, say) keep their status,
        # and a title that names it rather than the generic class's.
        error.status, error.title = status, HTTPStatus(status).phrase
    return problem_response(error)


def _allowed_methods(request: Request) -> str:
    """Every method some route takes on this path: Starlette's own 405 names only the first
    route's, and a path such as /authorize has one route per method."""
    methods: set[str] = set()
    for route in _leaf_routes(request.app.router.routes):
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def _leaf_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    # FastAPI keeps an included router whole (its routes behind ``original_router``).
    for route in routes:
        included = getattr(route, "original_router", None)
        yield from _leaf_routes(included.routes) if included is not None else (route,)


# Starlette raises these itself, for paths and methods no route takes.
_HTTP_PROBLEMS: dict[int, type[ProblemError]] = {404: NotFound, 405: MethodNotAllowed}


async def _on_browser(_request: Request, exc: Exception) -> Response:
    error = cast(BrowserError, exc)
    return render_page(error.status, error.title, error.message)


async def _on_upstream(request: Request, exc: Exception) -> Response:
    error = cast(TailscaleError, exc)
    context = getattr(request.app.state, "context", None)
    if context is not None:
        context.metrics.upstream_failures.labels(error.code).inc()
    headers = {"Retry-After": str(max(1, round(error.retry_after)))} if error.retry_after else {}
    detail = "Tailscale could not complete the request; please retry later."
    return await _on_problem(request, problem_for_code(error.code, detail, headers=headers))


# SQLSTATEs meaning "not now, retry": connection exceptions (08), insufficient resources
# (53), operator intervention (57: shutdown, and 57014 when statement_timeout cancels a slow
# query), system errors (58); a lost serialization race or deadlock (40001, 40P01), a lock
# not granted in time (55P03), and the server ending an idle or overlong transaction.
UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})
UNAVAILABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03", "25P03", "25P04"})
FailureKind = Literal["unavailable", "invalid", "conflict", "internal"]


def _database_problem(exc: Exception) -> ProblemError:
    """What a database failure tells the caller; never the statement, its values or message."""
    kind = _database_failure_kind(exc)
    state = _sqlstate(exc)
    if kind == "unavailable":
        log.warning("database unavailable: %s %s", type(exc).__name__, state)
        return DatabaseUnavailable(
            "The database is unavailable; retry later.", headers={"Retry-After": "1"}
        )
    if kind == "invalid":
        log.warning("database refused a value: %s %s", type(exc).__name__, state)
        return ValidationFailed("A value in the request is outside what can be stored.")
    if kind == "conflict":
        log.warning("database integrity conflict: %s %s", type(exc).__name__, state)
        return Conflict("The change conflicts with data already stored.")
    log.error("database error: %s %s", type(exc).__name__, state)
    return InternalError("An unexpected error occurred.")


def _database_failure_kind(exc: Exception) -> FailureKind:
    if not isinstance(exc, DBAPIError):
        return "unavailable"  # the pool timed out, or connecting failed or timed out
    driver, state = _driver_error(exc), _sqlstate(exc)
    if (
        exc.connection_invalidated
        or isinstance(driver, OSError)
        or state[:2] in UNAVAILABLE_SQLSTATE_CLASSES
        or state in UNAVAILABLE_SQLSTATES
    ):
        return "unavailable"
    # asyncpg refuses a value it cannot encode (a date out of range) with a ValueError,
    # before the server sees it; the server's own data exceptions are class 22.
    if state.startswith("22") or isinstance(driver, ValueError):
        return "invalid"
    if isinstance(exc, IntegrityError) or state.startswith("23"):
        return "conflict"
    return "internal"


def _driver_error(exc: DBAPIError) -> BaseException | None:
    """The driver's own exception, behind SQLAlchemy's wrapper and the dialect's adapter."""
    return (exc.orig.__cause__ or exc.orig) if exc.orig is not None else None


def _sqlstate(exc: Exception) -> str:
    driver = _driver_error(exc) if isinstance(exc, DBAPIError) else exc
    return str(getattr(driver, "sqlstate", None) or "")


async def _on_database(request: Request, exc: Exception) -> Response:
    return await _on_problem(request, _database_problem(exc))


async def _on_undecryptable(request: Request, exc: Exception) -> Response:
    # A sealed value no key in the ring opens: a removed key or a tampered row. Loud in the
    # log for operators; the caller learns only that nothing was handed out.
    log.error("a sealed value could not be opened", exc_info=exc)
    error = DecryptionFailed("A stored secret could not be decrypted; nothing was handed out.")
    return await _on_problem(request, error)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return await _on_problem(request, InternalError("An unexpected error occurred."))


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(BrowserError, _on_browser)
    app.add_exception_handler(TailscaleError, _on_upstream)
    app.add_exception_handler(DecryptionError, _on_undecryptable)
    for db_error in (PoolTimeout, DBAPIError, OSError):
        app.add_exception_handler(db_error, _on_database)
    app.add_exception_handler(Exception, _on_unexpected)
