"""The sandbox's clock (advanceable, so tests need not sleep) and RFC 3339 formatting."""

from datetime import UTC, datetime, timedelta

ZERO_TIME = "0001-01-01T00:00:00Z"


class Clock:
    """UTC wall time plus an offset that tests move forward."""

    def __init__(self) -> None:
        self._offset = timedelta(0)

    def now(self) -> datetime:
        """Return the current sandbox time (UTC, aware)."""
        return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> None:
        """Move the clock forward; codes, keys and tokens age accordingly."""
        self._offset += timedelta(seconds=seconds)

    def rewind(self) -> None:
        """Return to wall time."""
        self._offset = timedelta(0)


def rfc3339(moment: datetime | None) -> str:
    """Format to second precision with `Z`, as Tailscale's objects carry; None is the zero time."""
    if moment is None:
        return ZERO_TIME
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_precise(moment: datetime) -> str:
    """Format with microseconds and `Z`, as audit event times carry."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp that names its offset; raise ValueError otherwise."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("timestamp lacks a UTC offset")
    return moment.astimezone(UTC)
