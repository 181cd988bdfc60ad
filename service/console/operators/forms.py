"""The console's query parameters, as its forms send them, into the domains' filters.

Forms send every field, empty when unused: an empty field means "any". Times come from
``<input type="datetime-local">`` (no offset: read as UTC, which the pages show) or as RFC
3339 with an offset. Anything else is a plain 400 page naming the field.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.audit.query import AuditFilter
from service.provisioning.status import RequestStatus
from service.provisioning.store import RequestFilter
from service.web.errors import ValidationFailed

# As the audit API bounds its repeated filters.
MAX_TERMS = 20
AUDIT_DEFAULT_WINDOW = timedelta(days=1)


def _text(value: str) -> str | None:
    return value.strip() or None


def parse_moment(name: str, value: str) -> datetime | None:
    """A time from a form field, in UTC; None when empty."""
    text = value.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # OverflowError: past year 9999 in UTC
        raise ValidationFailed(f"{name} is not a date and time such as 2026-12-01T09:30") from exc


def parse_status(value: str) -> RequestStatus | None:
    text = value.strip()
    if not text:
        return None
    try:
        return RequestStatus(text)
    except ValueError as exc:
        names = ", ".join(status.value for status in RequestStatus)
        raise ValidationFailed(f"status must be one of {names}") from exc


def request_filter(
    user: str, caller: str, status: str, created_from: str, created_until: str
) -> RequestFilter:
    return RequestFilter(
        user_id=_text(user),
        created_by=_text(caller),
        status=parse_status(status),
        created_from=parse_moment("from", created_from),
        created_until=parse_moment("until", created_until),
    )


def _terms(name: str, value: str) -> tuple[str, ...]:
    """A comma-separated field: the audit API's repeated parameter, typed in one box."""
    terms = tuple(term.strip() for term in value.split(",") if term.strip())
    if len(terms) > MAX_TERMS:
        raise ValidationFailed(f"{name} takes at most {MAX_TERMS} values")
    return terms


def _day_before(moment: datetime) -> datetime:
    # An end in the year 1 has no day before it: the window then starts at the earliest time.
    try:
        return moment - AUDIT_DEFAULT_WINDOW
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def audit_filter(
    start: str, end: str, actor: str, target: str, event: str, user: str, *, now: datetime
) -> AuditFilter:
    """The API's filters (``GET /v1/audit``); without times, the last day."""
    end_at = parse_moment("end", end) or now
    start_at = parse_moment("start", start) or _day_before(end_at)
    if start_at > end_at:
        raise ValidationFailed("start must not be after end")
    return AuditFilter(
        start_at,
        end_at,
        _terms("actor", actor),
        _terms("target", target),
        _terms("event", event),
        _text(user),
    )


def form_moment(moment: datetime | None) -> str:
    """A time as a datetime-local field shows it again (UTC, to the second)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if moment else ""
