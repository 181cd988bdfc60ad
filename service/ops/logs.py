"""Logging that never carries a secret: query strings redacted, one line per record, as
text for people or as one JSON object per line for log pipelines."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any, Literal

from service.ops.request_id import current_request_id

LogFormat = Literal["json", "text"]
# What the access line of a request (service.ops.observe) adds to its record.
REQUEST_FIELDS = ("method", "route", "path", "status", "duration_ms")

_QUERY = re.compile(r"\?[^\s\"]*")
# Every character str.splitlines() breaks at, and the other controls (terminal escapes).
_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r"}


def redact_query(path: str) -> str:
    """Drop a query string: it can hold an OAuth code, a state or a consent token."""
    return _QUERY.sub("?[redacted]", path)


class RedactQueryStrings(logging.Filter):
    """Uvicorn's access log prints the full path with its query; keep only the path."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            args[2] = redact_query(str(args[2]))
            record.args = tuple(args)
        return True


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _SHORT_ESCAPES.get(char) or f"\\u{ord(char):04x}"


class OneLineFormatter(logging.Formatter):
    """Line breaks in a message would let input forge log lines; escape them."""

    def format(self, record: logging.LogRecord) -> str:
        return _UNSAFE.sub(_escape, super().format(record))


class TextFormatter(OneLineFormatter):
    """``time level logger [request id] message``; the id is ``-`` outside a request."""

    def __init__(self, fmt: str | None = None) -> None:
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = current_request_id() or "-"
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; ``ensure_ascii`` escapes every line separator there is."""

    def __init__(self, fmt: str | None = None) -> None:
        super().__init__()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": current_request_id(),
        }
        for name in REQUEST_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=True, default=str)


FORMATTERS: dict[LogFormat, type[logging.Formatter]] = {
    "json": JsonFormatter,
    "text": TextFormatter,
}


def logging_config(level: str = "INFO", log_format: LogFormat = "text") -> dict[str, Any]:
    """A dictConfig for uvicorn and tsprov alike.

    JSON goes to stdout, where log collectors read a container's lines, and carries tsprov's
    own access line (route template, status, duration, request id). Text goes to stderr, as
    it always has, with uvicorn's familiar access line, its query strings redacted.
    """
    access_level = level if log_format == "text" else "WARNING"
    tsprov_access_level = level if log_format == "json" else "WARNING"
    stream = "ext://sys.stdout" if log_format == "json" else "ext://sys.stderr"
    handler = {"class": "logging.StreamHandler", "formatter": "line", "stream": stream}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactQueryStrings}},
        "formatters": {"line": {"()": FORMATTERS[log_format]}},
        "handlers": {"stdout": handler, "access": {**handler, "filters": ["redact"]}},
        "loggers": {
            "tsprov": {"handlers": ["stdout"], "level": level, "propagate": False},
            "tsprov.access": {"level": tsprov_access_level},
            "uvicorn": {"handlers": ["stdout"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["access"], "level": access_level, "propagate": False},
            "sqlalchemy": {"handlers": ["stdout"], "level": "WARNING", "propagate": False},
        },
    }
