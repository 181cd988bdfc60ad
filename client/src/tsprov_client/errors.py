"""Every failure as a typed exception under ``TsprovError``.

API problems (RFC 9457 bodies) map by their stable ``code``; a code this client does not
know yet raises ``TsprovError`` itself. A request that ends while ``provision`` waits raises
a ``RequestEnded`` subclass carrying the request and its ``failure``.
"""

from __future__ import annotations

from typing import Any

from tsprov_client.models import Failure, ProvisioningRequest


class TsprovError(Exception):
    """A tsprov failure: a stable ``code``, the HTTP ``status`` (``None`` when no answer came)
    and a ``detail`` for people. ``problem`` holds every member of the problem body."""

    code: str = "error"
    status: int | None = None

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        problem: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or type(self).code
        self.status = status if status is not None else type(self).status
        self.problem: dict[str, Any] = problem or {}
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f" ({self.status})" if self.status else ""
        return f"{self.code}{where}: {self.detail}"


class Unauthorized(TsprovError):
    code, status = "unauthorized", 401


class Forbidden(TsprovError):
    code, status = "forbidden", 403


class NotFound(TsprovError):
    code, status = "not_found", 404


class ValidationFailed(TsprovError):
    """Refused input; ``errors`` lists each refused field (``loc``) and why (``msg``)."""

    code, status = "validation_failed", 422

    @property
    def errors(self) -> list[dict[str, Any]]:
        found = self.problem.get("errors")
        return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


class IdempotencyConflict(TsprovError):
    code, status = "idempotency_conflict", 422


class PayloadTooLarge(TsprovError):
    code, status = "payload_too_large", 413


class Conflict(TsprovError):
    code, status = "conflict", 409


class NotReady(Conflict):
    """The request is not ready to claim; ``request_status`` says what it is."""

    code = "not_ready"

    @property
    def request_status(self) -> str | None:
        found = self.problem.get("request_status")
        return str(found) if found is not None else None


class AlreadyClaimed(Conflict):
    code = "already_claimed"


class ConsentRequired(Conflict):
    code = "consent_required"


class GrantRevoked(Conflict):
    code = "grant_revoked"


class IdempotencyInFlight(Conflict):
    code = "idempotency_in_flight"


class TailscaleLoginRequired(Conflict):
    """The user has no expected Tailscale login, so nobody may be sent to consent for them."""

    code = "tailscale_login_required"


class IdentityMismatch(TsprovError):
    """The Tailscale login that consented (or joined) is not the user's."""

    code, status = "identity_mismatch", 403


class IdentityUnverified(TsprovError):
    """No identity source could confirm who consented, so no key was handed out."""

    code, status = "identity_unverified", 403


class RateLimited(TsprovError):
    code, status = "rate_limited", 429


class TooManyWaits(RateLimited):
    code = "too_many_waits"


class ServiceUnavailable(TsprovError):
    code, status = "service_unavailable", 503


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"


class EncryptionUnavailable(ServiceUnavailable):
    code = "encryption_unavailable"


class UpstreamUnavailable(ServiceUnavailable):
    code = "upstream_unavailable"


class UpstreamOutcomeUnknown(ServiceUnavailable):
    code = "upstream_outcome_unknown"


class UpstreamRefused(TsprovError):
    code, status = "upstream_refused", 502


class UpstreamOAuthError(UpstreamRefused):
    code = "upstream_oauth_error"


class InternalError(TsprovError):
    code, status = "internal_error", 500


class DecryptionFailed(InternalError):
    code = "decryption_failed"


class UnexpectedResponse(TsprovError):
    """An answer that is not tsprov's (a proxy's error page, say); its body is not echoed."""

    code = "unexpected_response"


class ServerUnreachable(TsprovError):
    """No answer at all: the connection failed or timed out on every attempt."""

    code = "unreachable"


class InvalidWebhook(TsprovError):
    """A webhook whose signature, timestamp or body does not verify."""

    code = "invalid_webhook"


def error_from_problem(
    status: int, problem: dict[str, Any], retry_after: float | None
) -> TsprovError:
    """The exception for a problem body; an unknown ``code`` gives ``TsprovError`` itself."""
    code = str(problem.get("code") or "")
    kind = PROBLEM_CLASSES.get(code, TsprovError)
    detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
    return kind(detail, code=code or None, status=status, problem=problem, retry_after=retry_after)


class RequestEnded(TsprovError):
    """The request ended without a key: ``request`` is its last state, ``failure`` why."""

    code = "request_ended"

    def __init__(self, request: ProvisioningRequest) -> None:
        self.request = request
        self.failure: Failure | None = request.failure
        if request.failure is not None:
            detail, code = request.failure.message or request.failure.code, request.failure.code
        else:
            detail, code = f"the provisioning request is {request.status}", None
        super().__init__(detail, code=code)
        # Some subclasses are also problem classes with an HTTP status; this came with none.
        self.status = None

    @property
    def request_status(self) -> str:
        return self.request.status


class RequestFailed(RequestEnded):
    code = "request_failed"


class RequestExpired(RequestEnded):
    """The consent window closed, or the key expired unclaimed."""

    code = "request_expired"


class RequestCancelled(RequestEnded):
    """Cancelled by a caller, or declined by the person asked (see ``failure``)."""

    code = "request_cancelled"


class RequestIdentityMismatch(RequestFailed, IdentityMismatch):
    """Failed because another Tailscale login consented; also an ``IdentityMismatch``."""


class RequestIdentityUnverified(RequestFailed, IdentityUnverified):
    """Failed because nobody could confirm who consented; also an ``IdentityUnverified``."""


_FAILED_BY_CODE: dict[str, type[RequestFailed]] = {
    "identity_mismatch": RequestIdentityMismatch,
    "identity_unverified": RequestIdentityUnverified,
}
_ENDED_BY_STATUS: dict[str, type[RequestEnded]] = {
    "expired": RequestExpired,
    "cancelled": RequestCancelled,
    "failed": RequestFailed,
}


def error_for_ended_request(request: ProvisioningRequest) -> RequestEnded:
    """The exception for a request in a final status, typed by its failure where it has one."""
    kind = _ENDED_BY_STATUS.get(request.status, RequestEnded)
    if kind is RequestFailed and request.failure is not None:
        kind = _FAILED_BY_CODE.get(request.failure.code, RequestFailed)
    return kind(request)


class ConsentPending(TsprovError):
    """``provision`` was given no way to show the consent link: here it is.

    Show ``consent_url`` to the user, then call ``collect(request.id)``.
    """

    code = "consent_pending"

    def __init__(self, request: ProvisioningRequest) -> None:
        self.request = request
        self.consent_url = request.consent_url
        super().__init__("the user must consent; show them consent_url, then call collect()")


class ConsentTimeout(TsprovError):
    """Nobody consented before ``wait`` ran out; ``request`` is its last state."""

    code = "consent_timeout"

    def __init__(self, request: ProvisioningRequest, *, cancelled: bool) -> None:
        self.request = request
        self.cancelled = cancelled
        outcome = "it was cancelled" if cancelled else "it is still open"
        super().__init__(f"no consent arrived in time; {outcome}")


def _problem_classes() -> dict[str, type[TsprovError]]:
    """Each API problem code's class: the subclasses that carry an HTTP status."""
    found: dict[str, type[TsprovError]] = {}
    pending: list[type[TsprovError]] = [TsprovError]
    while pending:
        kind = pending.pop()
        if kind.status is not None and not issubclass(kind, RequestEnded):
            found.setdefault(kind.code, kind)
        pending.extend(kind.__subclasses__())
    return found


PROBLEM_CLASSES = _problem_classes()
