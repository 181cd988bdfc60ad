"""One error hierarchy, rendered as problem+json (RFC 9457) for callers, HTML for browsers."""

from __future__ import annotations

from typing import Any


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
    "identity_mismatch": "The consenting Tailscale identity is not the user's.",
    "upstream_unavailable": "Tailscale is unreachable, slow or rate-limiting; retry later.",
    "upstream_outcome_unknown": "Tailscale may have acted; tsprov will settle it; retry later.",
    "upstream_refused": "Tailscale refused the request.",
    "upstream_oauth_error": "Tailscale's token endpoint refused the grant.",
    "database_unavailable": "The database is down or saturated; retry later.",
    "encryption_unavailable": "Encryption keys are not loaded; the service is not ready.",
    "service_unavailable": "The service is shutting down or not ready.",
    "conflict": "The object is in a state that does not allow this.",
    "decryption_failed": "A stored secret could not be decrypted (a removed key?).",
    "internal_error": "An unexpected error; nothing was echoed.",
}


def problem_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for a route's problem answers: each code with what it means."""
    listed = "\n".join(f"- `{code}`: {ERROR_CODES[code]}" for code in codes)
    example = Unauthorized().body() if "unauthorized" in codes else None
    content = {"application/problem+json": {"example": example}} if example else {}
    return {
        "4XX": {
            "description": f"application/problem+json, `code` one of:\n{listed}",
            "content": content,
        }
    }
