"""Dev logs a person can read beside the walkthrough: each line names who wrote it.

``tsprov dev`` runs the sandbox and tsprov in one process, so uvicorn's loggers are shared;
each server runs in its own task with ``COMPONENT`` set, and every task it starts inherits
that. The background loop is labelled ``jobs``. The sandbox's API answers to tsprov (token
exchanges and the background loop's polling) go to debug unless they failed: what is left
is what a person did, on the consent screen or with a join.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from service.ops.logs import logging_config

COMPONENT: ContextVar[str] = ContextVar("component", default="tsprov")
BACKGROUND_LOGGER = "tsprov.background"
MACHINE_PATHS = ("/api/v2/",)


class LabelComponent(logging.Filter):
    """Sets ``record.component``: sandbox, tsprov or jobs."""

    def filter(self, record: logging.LogRecord) -> bool:
        background = record.name.startswith(BACKGROUND_LOGGER)
        record.component = "jobs" if background else COMPONENT.get()
        return True


class QuietDevNoise(logging.Filter):
    """Drops, below debug, the sandbox's machine-to-machine access lines that succeeded and
    the sandbox's own copy of the process start and finish lines (tsprov prints them)."""

    def __init__(self, verbose: bool = False) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if self.verbose or COMPONENT.get() != "sandbox":
            return True
        message = str(record.msg)
        if message.startswith(("Started server process", "Finished server process")):
            return False
        return not (record.name == "uvicorn.access" and _machine_call_succeeded(record))


def _machine_call_succeeded(record: logging.LogRecord) -> bool:
    # uvicorn's access record: (client, method, path, http version, status)
    args = record.args if isinstance(record.args, tuple) else ()
    if len(args) < 5:
        return False
    return str(args[2]).startswith(MACHINE_PATHS) and int(str(args[4])) < 400


def dev_logging_config(level: str = "INFO") -> dict[str, Any]:
    """tsprov's logging config, with the component on every line and the dev noise dropped."""
    config = logging_config(level)
    config["filters"]["component"] = {"()": LabelComponent}
    config["filters"]["quiet"] = {"()": QuietDevNoise, "verbose": level == "DEBUG"}
    for handler in config["handlers"].values():
        handler["filters"] = ["component", "quiet", *handler.get("filters", [])]
    config["formatters"]["line"]["format"] = (
        "%(asctime)s %(component)-7s %(levelname)s %(name)s %(message)s"
    )
    return config
