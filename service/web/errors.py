"""One error hierarchy, rendered as problem+json (RFC 9457) for callers, HTML for browsers."""

from __future__ import annotations

from typing import Any


class ProblemError(Exception):
    """An error a caller should see: a status, a stable code, a human detail."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"
    meaning: str = "The request could not be understood."

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
    meaning = "Missing, unknown, malformed or revoked API key."

    def __init__(self) -> None:
        # One identical answer for every bad key: nothing to tell keys apart by.
        super().__init__(
            "A valid API key is required.", headers={"WWW-Authenticate": 'Bearer realm="tsprov"'}
        )


class Forbidden(ProblemError):
    status, code, title = 403, "forbidden", "Forbidden"
    meaning = "The key lacks the scope, or the user is outside the key's user patterns."


class NotFound(ProblemError):
    status, code, title = 404, "not_found", "Not found"
    meaning = "No such object (or not visible to this key)."


class ValidationFailed(ProblemError):
    status, code, title = 422, "validation_failed", "Validation failed"
    meaning = "The request body or parameters are invalid."


class Conflict(ProblemError):
    status, code, title = 409, "conflict", "Conflict"
    meaning = "The object is in a state that does not allow this, or the change clashes."


class NotReady(Conflict):
    code, title = "not_ready", "Request not ready"
    meaning = "The request is not ready to claim; see request_status."


class AlreadyClaimed(Conflict):
    code, title = "already_claimed", "Already claimed"
    meaning = "The request's key was already handed out."


class GrantRevoked(Conflict):
    code, title = "grant_revoked", "Grant revoked"
    meaning = "The user's grant was revoked."


class ConsentRequired(Conflict):
    code, title = "consent_required", "Consent required"
    meaning = "The user must consent (again) before this can proceed."


class IdempotencyConflict(ProblemError):
    status, code, title = 422, "idempotency_conflict", "Idempotency-Key reused"
    meaning = "The Idempotency-Key was used with a different body."


class IdempotencyInFlight(Conflict):
    code, title = "idempotency_in_flight", "Request already in flight"
    meaning = "A request with this Idempotency-Key is still in flight."


class ServiceUnavailable(ProblemError):
    status, code, title = 503, "service_unavailable", "Service unavailable"
    meaning = "The service is shutting down or not ready."


class DatabaseUnavailable(ServiceUnavailable):
    code, title = "database_unavailable", "Database unavailable"
    meaning = "The database is down, saturated or lost a race; retry later."


class EncryptionUnavailable(ServiceUnavailable):
    code, title = "encryption_unavailable", "Encryption keys not loaded"
    meaning = "Encryption keys are not loaded; the service is not ready."


class DecryptionFailed(ProblemError):
    status, code, title = 500, "decryption_failed", "Decryption failed"
    meaning = "A stored secret could not be decrypted (a removed key?)."


class InternalError(ProblemError):
    status, code, title = 500, "internal_error", "Internal error"
    meaning = "An unexpected error; nothing was echoed."


class MethodNotAllowed(ProblemError):
    status, code, title = 405, "method_not_allowed", "Method not allowed"
    meaning = "The path exists but does not take this HTTP method."


class PayloadTooLarge(ProblemError):
    status, code, title = 413, "payload_too_large", "Payload too large"
    meaning = "The request body is larger than MAX_BODY_BYTES (64 KiB by default)."


class BodyTooSlow(ProblemError):
    status, code, title = 408, "body_too_slow", "Request body too slow"
    meaning = "The request body did not arrive within BODY_TIMEOUT_SECONDS."


class RateLimited(ProblemError):
    status, code, title = 429, "rate_limited", "Too many refused requests"
    meaning = "Too many refused requests from this address or key; wait for Retry-After."


class TooManyWaits(ProblemError):
    status, code, title = 429, "too_many_waits", "Too many long-polls"
    meaning = "Too many concurrent long-polls (`wait_seconds`) for this key or this replica."


class IdentityMismatch(ProblemError):
    status, code, title = 403, "identity_mismatch", "Identity mismatch"
    meaning = (
        "The consenting Tailscale identity is not the user's (a 403 page in the browser flow, "
        "and the recorded error in the audit trail)."
    )


class UpstreamUnavailable(ServiceUnavailable):
    code, title = "upstream_unavailable", "Tailscale unavailable"
    meaning = "Tailscale is unreachable, slow or rate-limiting; retry later."


class UpstreamOutcomeUnknown(ServiceUnavailable):
    code, title = "upstream_outcome_unknown", "Tailscale outcome unknown"
    meaning = "Tailscale may have acted; tsprov will settle it; retry later."


class UpstreamRefused(ProblemError):
    status, code, title = 502, "upstream_refused", "Tailscale refused the request"
    meaning = "Tailscale refused the request."


class UpstreamOAuthError(UpstreamRefused):
    code, title = "upstream_oauth_error", "Tailscale refused the grant"
    meaning = "Tailscale's token endpoint refused the grant."


class BrowserError(Exception):
    """An error shown to a person in a browser as a plain page."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


def _problem_classes() -> dict[str, type[ProblemError]]:
    """Every problem code and the one class that defines its status, title and meaning."""
    found: dict[str, type[ProblemError]] = {}
    pending: list[type[ProblemError]] = [ProblemError]
    while pending:
        kind = pending.pop()
        found.setdefault(kind.code, kind)
        pending.extend(kind.__subclasses__())
    return found


PROBLEMS = _problem_classes()
ERROR_CODES: dict[str, str] = {code: kind.meaning for code, kind in PROBLEMS.items()}
ERROR_STATUS: dict[str, int] = {code: kind.status for code, kind in PROBLEMS.items()}
PROBLEM_JSON = "application/problem+json"


def problem_for_code(code: str, detail: str, **kwargs: Any) -> ProblemError:
    """The problem a failure named by ``code`` (an upstream error's, say) answers with."""
    return PROBLEMS.get(code, InternalError)(detail, **kwargs)
