"""Logging that never carries a secret: query strings redacted, one line per record."""

from __future__ import annotations

import logging
import re
from typing import Any

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


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """A dictConfig for uvicorn and tsprov alike."""
    formatter = {"()": OneLineFormatter, "format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactQueryStrings}},
        "formatters": {"line": formatter},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "line"},
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "line",
                "filters": ["redact"],
            },
        },
        "loggers": {
            "tsprov": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["access"], "level": level, "propagate": False},
            "sqlalchemy": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        },
    }
