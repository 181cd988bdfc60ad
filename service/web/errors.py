"""One error hierarchy, rendered as problem+json (RFC 9457) for callers, HTML for browsers."""

from __future__ import annotations

from typing import Any

from service.web.problem import Problem


class ProblemError(Exception):
    """An error a caller should see: a status, a stable code, a human detail."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {
            "type": f"https://tsprov.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            **self.extra,
        }


class Unauthorized(ProblemError):
    status, code, title = 401, "unauthorized", "Unauthorized"

    def __init__(self) -> None:
        # One identical answer for every bad key: nothing to tell keys apart by.
        super().__init__(
            "A valid API key is required.", headers={"WWW-Authenticate": 'Bearer realm="tsprov"'}
        )


class Forbidden(ProblemError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(ProblemError):
    status, code, title = 404, "not_found", "Not found"


class ValidationFailed(ProblemError):
    status, code, title = 422, "validation_failed", "Validation failed"


class Conflict(ProblemError):
    status, code, title = 409, "conflict", "Conflict"


class NotReady(Conflict):
    code, title = "not_ready", "Request not ready"


class AlreadyClaimed(Conflict):
    code, title = "already_claimed", "Already claimed"


class GrantRevoked(Conflict):
    code, title = "grant_revoked", "Grant revoked"


class ConsentRequired(Conflict):
    code, title = "consent_required", "Consent required"


class IdempotencyConflict(ProblemError):
    status, code, title = 422, "idempotency_conflict", "Idempotency-Key reused"


class IdempotencyInFlight(Conflict):
    code, title = "idempotency_in_flight", "Request already in flight"


class ServiceUnavailable(ProblemError):
    status, code, title = 503, "service_unavailable", "Service unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    code, title = "database_unavailable", "Database unavailable"


class EncryptionUnavailable(ServiceUnavailable):
    code, title = "encryption_unavailable", "Encryption keys not loaded"


class DecryptionFailed(ProblemError):
    status, code, title = 500, "decryption_failed", "Decryption failed"


class InternalError(ProblemError):
    status, code, title = 500, "internal_error", "Internal error"


class UpstreamFailure(ProblemError):
    """Tailscale failed us; ``code`` comes from the upstream error."""

    status, code, title = 502, "upstream_error", "Tailscale request failed"

    def __init__(self, detail: str, *, code: str, status: int, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.code = code
        self.status = status


class BrowserError(Exception):
    """An error shown to a person in a browser as a plain page."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


ERROR_CODES: dict[str, str] = {
    "unauthorized": "Missing, unknown, malformed or revoked API key.",
    "forbidden": "The key lacks the scope, or the user is outside the key's user patterns.",
    "not_found": "No such object (or not visible to this key).",
    "validation_failed": "The request body or parameters are invalid.",
    "not_ready": "The request is not ready to claim; see request_status.",
    "already_claimed": "The request's key was already handed out.",
    "consent_required": "The user must consent (again) before this can proceed.",
    "grant_revoked": "The user's grant was revoked.",
    "idempotency_conflict": "The Idempotency-Key was used with a different body.",
    "idempotency_in_flight": "A request with this Idempotency-Key is still in flight.",
    "identity_mismatch": (
        "The consenting Tailscale identity is not the user's (a 403 page in the browser flow, "
        "and the recorded error in the audit trail)."
    ),
    "upstream_unavailable": "Tailscale is unreachable, slow or rate-limiting; retry later.",
    "upstream_outcome_unknown": "Tailscale may have acted; tsprov will settle it; retry later.",
    "upstream_refused": "Tailscale refused the request.",
    "upstream_oauth_error": "Tailscale's token endpoint refused the grant.",
    "database_unavailable": "The database is down, saturated or lost a race; retry later.",
    "encryption_unavailable": "Encryption keys are not loaded; the service is not ready.",
    "service_unavailable": "The service is shutting down or not ready.",
    "conflict": "The object is in a state that does not allow this, or the change clashes.",
    "decryption_failed": "A stored secret could not be decrypted (a removed key?).",
    "internal_error": "An unexpected error; nothing was echoed.",
}

ERROR_STATUS: dict[str, int] = {
    "unauthorized": 401,
    "forbidden": 403,
    "identity_mismatch": 403,
    "not_found": 404,
    "not_ready": 409,
    "already_claimed": 409,
    "consent_required": 409,
    "grant_revoked": 409,
    "idempotency_in_flight": 409,
    "conflict": 409,
    "validation_failed": 422,
    "idempotency_conflict": 422,
    "decryption_failed": 500,
    "internal_error": 500,
    "upstream_refused": 502,
    "upstream_oauth_error": 502,
    "upstream_unavailable": 503,
    "upstream_outcome_unknown": 503,
    "database_unavailable": 503,
    "encryption_unavailable": 503,
    "service_unavailable": 503,
}

PROBLEM_JSON = "application/problem+json"
# Every caller route authenticates against the database before anything else, so these can
# answer any of them.
ALWAYS_POSSIBLE = ("unauthorized", "forbidden", "database_unavailable", "internal_error")
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
    error = ProblemError(ERROR_CODES[code], extra=_EXAMPLE_EXTRAS.get(code))
    error.status, error.code, error.title = ERROR_STATUS[code], code, _titles().get(code, "Error")
    return error.body()


def _titles() -> dict[str, str]:
    titles = {code: UpstreamFailure.title for code in ERROR_CODES if code.startswith("upstream_")}
    pending: list[type[ProblemError]] = [ProblemError]
    while pending:
        kind = pending.pop()
        titles.setdefault(kind.code, kind.title)
        pending.extend(kind.__subclasses__())
    return titles


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
