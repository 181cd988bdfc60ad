"""One error hierarchy, rendered as problem+json (RFC 9457) for callers, HTML for browsers."""

from __future__ import annotations

from typing import Any


def problem_page(code: str) -> str:
    """The problem's ``type``: a page tsprov serves, saying what it means and what to do."""
    return f"/problems/{code}"


class ProblemError(Exception):
    """An error a caller should see: a status, a stable code, a human detail."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"
    meaning: str = "The request could not be understood."
    what_to_do: str = "Check the request against the API description and send it again."

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
            "type": problem_page(self.code),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            **self.extra,
        }


class Unauthorized(ProblemError):
    status, code, title = 401, "unauthorized", "Unauthorized"
    meaning = "Missing, unknown, malformed or revoked API key."
    what_to_do = (
        "Send `Authorization: Bearer tsprov_…` with a key from `tsprov callers create`. A "
        "revoked key stays refused: ask an operator for a new one."
    )

    def __init__(self) -> None:
        # One identical answer for every bad key: nothing to tell keys apart by.
        super().__init__(
            "A valid API key is required.", headers={"WWW-Authenticate": 'Bearer realm="tsprov"'}
        )


class Forbidden(ProblemError):
    status, code, title = 403, "forbidden", "Forbidden"
    meaning = "The key lacks the scope, or the user is outside the key's user patterns."
    what_to_do = (
        "Use a key with the scope the operation needs (provision, read, audit or admin) "
        "and whose user patterns cover this user, or ask an operator to make one."
    )


class NotFound(ProblemError):
    status, code, title = 404, "not_found", "Not found"
    meaning = "No such object (or not visible to this key)."
    what_to_do = (
        "Check the id or path. A request or user your key may not see answers the same "
        "way as one that does not exist."
    )


class ValidationFailed(ProblemError):
    status, code, title = 422, "validation_failed", "Validation failed"
    meaning = "The request body or parameters are invalid."
    what_to_do = (
        "Fix the fields `errors` names and send again; the API description lists every "
        "field's format."
    )


class Conflict(ProblemError):
    status, code, title = 409, "conflict", "Conflict"
    meaning = "The object is in a state that does not allow this, or the change clashes."
    what_to_do = "Read the object again to see its current state, then decide whether to retry."


class NotReady(Conflict):
    code, title = "not_ready", "Request not ready"
    meaning = "The request is not ready to claim; see request_status."
    what_to_do = (
        "Wait for the user to approve (long-poll the request with `wait_seconds`), then "
        "claim again."
    )


class AlreadyClaimed(Conflict):
    code, title = "already_claimed", "Already claimed"
    meaning = "The request's key was already handed out."
    what_to_do = (
        "The key went out once and will not be shown again. If it was lost, cancel the "
        "request and create a new one."
    )


class GrantRevoked(Conflict):
    code, title = "grant_revoked", "Grant revoked"
    meaning = "The user's grant was revoked."
    what_to_do = "Create a new request; the user must consent again."


class ConsentRequired(Conflict):
    code, title = "consent_required", "Consent required"
    meaning = "The user must consent (again) before this can proceed."
    what_to_do = "Send the user the request's new `consent_url` and claim once they approved."


class IdempotencyConflict(ProblemError):
    status, code, title = 422, "idempotency_conflict", "Idempotency-Key reused"
    meaning = "The Idempotency-Key was used with a different body."
    what_to_do = "Use a new Idempotency-Key for a different body, or resend exactly the first body."


class IdempotencyInFlight(Conflict):
    code, title = "idempotency_in_flight", "Request already in flight"
    meaning = "A request with this Idempotency-Key is still in flight."
    what_to_do = (
        "Wait a moment and retry with the same Idempotency-Key: you will get the first "
        "request's answer."
    )


class ServiceUnavailable(ProblemError):
    status, code, title = 503, "service_unavailable", "Service unavailable"
    meaning = "The service is shutting down or not ready."
    what_to_do = "Retry after the time `Retry-After` gives; another replica may answer meanwhile."


class DatabaseUnavailable(ServiceUnavailable):
    code, title = "database_unavailable", "Database unavailable"
    meaning = "The database is down, saturated or lost a race; retry later."
    what_to_do = (
        "Retry after the time `Retry-After` gives. If it persists, an operator should "
        "check the database."
    )


class EncryptionUnavailable(ServiceUnavailable):
    code, title = "encryption_unavailable", "Encryption keys not loaded"
    meaning = "Encryption keys are not loaded; the service is not ready."
    what_to_do = (
        "An operator must set TSPROV_ENCRYPTION_KEYS (or _FILE) and restart; retrying "
        "will not help before that."
    )


class DecryptionFailed(ProblemError):
    status, code, title = 500, "decryption_failed", "Decryption failed"
    meaning = "A stored secret could not be decrypted (a removed key?)."
    what_to_do = (
        "An operator must restore the key that sealed the value (see `tsprov keys`); the "
        "request cannot proceed until then."
    )


class InternalError(ProblemError):
    status, code, title = 500, "internal_error", "Internal error"
    meaning = "An unexpected error; nothing was echoed."
    what_to_do = (
        "Retry once; if it happens again, report the time and the request to an operator, "
        "whose log has the cause."
    )


class MethodNotAllowed(ProblemError):
    status, code, title = 405, "method_not_allowed", "Method not allowed"
    meaning = "The path exists but does not take this HTTP method."
    what_to_do = (
        "Use a method the path takes; the `Allow` header and the API description list them."
    )


class PayloadTooLarge(ProblemError):
    status, code, title = 413, "payload_too_large", "Payload too large"
    meaning = "The request body is larger than MAX_BODY_BYTES (64 KiB by default)."
    what_to_do = "Send a smaller body: no tsprov request needs more than a few hundred bytes."


class BodyTooSlow(ProblemError):
    status, code, title = 408, "body_too_slow", "Request body too slow"
    meaning = "The request body did not arrive within BODY_TIMEOUT_SECONDS."
    what_to_do = "Send the whole body at once, then retry; check the network in between."


class RateLimited(ProblemError):
    status, code, title = 429, "rate_limited", "Too many refused requests"
    meaning = "Too many refused requests from this address or key; wait for Retry-After."
    what_to_do = (
        "Fix the API key (a refused key is what is being counted), wait the Retry-After "
        "seconds, then retry."
    )


class TooManyWaits(ProblemError):
    status, code, title = 429, "too_many_waits", "Too many long-polls"
    meaning = "Too many concurrent long-polls (`wait_seconds`) for this key or this replica."
    what_to_do = "Wait on fewer requests at once (or use webhooks), then retry after Retry-After."


class IdentityMismatch(ProblemError):
    status, code, title = 403, "identity_mismatch", "Identity mismatch"
    meaning = (
        "The consenting Tailscale identity is not the user's (a 403 page in the browser flow, "
        "and the recorded error in the audit trail)."
    )
    what_to_do = (
        "Ask for a new consent link and approve it signed in to Tailscale as the person "
        "the request is for."
    )


class IdentityUnverified(Conflict):
    code, title = "identity_unverified", "Identity not confirmed"
    meaning = (
        "Under identity binding before_handout, no identity source could confirm who "
        "consented, so no key was handed out; the detail names what would let tsprov confirm."
    )
    what_to_do = (
        "Give the observer client the scope the detail names (or set TOKEN_LOGIN_FIELD), then "
        "create a new request; run `tsprov doctor` to see which identity sources answer."
    )


class TailscaleLoginRequired(Conflict):
    code, title = "tailscale_login_required", "Tailscale login required"
    meaning = (
        "The user has no expected Tailscale login: set one with PUT /v1/users/{user_id}, or "
        "configure TSPROV_LOGIN_TEMPLATE."
    )
    what_to_do = (
        "Set the user's tailscale_login with PUT /v1/users/{user_id} (needs admin), then "
        "create the request again."
    )


class UpstreamUnavailable(ServiceUnavailable):
    code, title = "upstream_unavailable", "Tailscale unavailable"
    meaning = "Tailscale is unreachable, slow or rate-limiting; retry later."
    what_to_do = "Retry after the time `Retry-After` gives; nothing was changed at Tailscale."


class UpstreamOutcomeUnknown(ServiceUnavailable):
    code, title = "upstream_outcome_unknown", "Tailscale outcome unknown"
    meaning = "Tailscale may have acted; tsprov will settle it; retry later."
    what_to_do = (
        "Retry the same call with the same Idempotency-Key later: tsprov settles what "
        "Tailscale did first."
    )


class UpstreamRefused(ProblemError):
    status, code, title = 502, "upstream_refused", "Tailscale refused the request"
    meaning = "Tailscale refused the request."
    what_to_do = (
        "An operator should check the OAuth app's scopes and the tailnet's settings; "
        "retrying the same call will not help."
    )


class UpstreamOAuthError(UpstreamRefused):
    code, title = "upstream_oauth_error", "Tailscale refused the grant"
    meaning = "Tailscale's token endpoint refused the grant."
    what_to_do = (
        "Create a new request so the user consents again; if it keeps happening, an "
        "operator should check the OAuth app."
    )


class BrowserError(Exception):
    """An error shown to a person in a browser as a plain page."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
