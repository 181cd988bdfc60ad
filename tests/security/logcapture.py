"""Every log line the service would write in production, captured in memory.

``service.ops.logs.logging_config()`` is what ``tsprov serve`` hands uvicorn, as text or as
JSON. This applies the same handlers, formatters and filters to the same loggers, each
writing to one buffer instead of a stream, and restores the loggers afterwards. Records that
reach the unconfigured root logger are captured from WARNING up, as Python's last-resort
handler would print them.

Servers other tests left running in background threads keep logging (a threaded service's
background jobs poll the sandbox, whose access log then writes a line). A test that counts
lines passes ``only_this_thread=True`` to keep just the records its own thread sends.
"""

from __future__ import annotations

import io
import logging
import threading
from types import TracebackType
from typing import Any

from service.ops.logs import LogFormat, logging_config

LAST_RESORT_LEVEL = logging.WARNING


def _build(spec: dict[str, Any]) -> Any:
    arguments = {key: value for key, value in spec.items() if key != "()"}
    return spec["()"](**({"fmt": arguments["format"]} if "format" in arguments else {}))


class _FromThread(logging.Filter):
    def __init__(self, thread_id: int) -> None:
        super().__init__()
        self._thread_id = thread_id

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self._thread_id


class ProductionLogs:
    """``with ProductionLogs() as logs: …`` then ``logs.lines()``."""

    def __init__(
        self, level: str = "INFO", *, only_this_thread: bool = False, log_format: LogFormat = "text"
    ) -> None:
        self._config = logging_config(level, log_format)
        self._buffer = io.StringIO()
        self._saved: list[tuple[logging.Logger, list[logging.Handler], int, bool]] = []
        self._last_resort = logging.StreamHandler(self._buffer)
        self._only_this_thread = only_this_thread

    def _handlers(self) -> dict[str, logging.Handler]:
        formatters = {name: _build(spec) for name, spec in self._config["formatters"].items()}
        filters = {name: _build(spec) for name, spec in self._config["filters"].items()}
        handlers: dict[str, logging.Handler] = {}
        for name, spec in self._config["handlers"].items():
            handler = logging.StreamHandler(self._buffer)
            handler.setFormatter(formatters[spec["formatter"]])
            for filter_name in spec.get("filters", []):
                handler.addFilter(filters[filter_name])
            handlers[name] = handler
        return handlers

    def _keep_only_this_thread(self, handlers: list[logging.Handler]) -> None:
        if self._only_this_thread:
            for handler in handlers:
                handler.addFilter(_FromThread(threading.get_ident()))

    def __enter__(self) -> ProductionLogs:
        handlers = self._handlers()
        self._keep_only_this_thread([*handlers.values(), self._last_resort])
        for name, spec in self._config["loggers"].items():
            logger = logging.getLogger(name)
            self._saved.append((logger, list(logger.handlers), logger.level, logger.propagate))
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            for handler_name in spec.get("handlers", []):
                logger.addHandler(handlers[handler_name])
            logger.setLevel(spec["level"])
            logger.propagate = spec.get("propagate", True)
        self._last_resort.setLevel(LAST_RESORT_LEVEL)
        self._last_resort.setFormatter(_build(self._config["formatters"]["line"]))
        logging.getLogger().addHandler(self._last_resort)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        logging.getLogger().removeHandler(self._last_resort)
        for logger, handlers, level, propagate in self._saved:
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            for handler in handlers:
                logger.addHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate

    def lines(self) -> list[str]:
        return self._buffer.getvalue().splitlines()
