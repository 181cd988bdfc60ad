"""`tsprov dev` logs: each line names its component, and the sandbox's machine chatter and
its copy of the start line stay out of the way."""

from __future__ import annotations

import contextvars
import logging

from devstack.log_labels import COMPONENT, LabelComponent, QuietDevNoise, dev_logging_config
from service.ops.logs import OneLineFormatter


def _record(name: str, msg: str, args: tuple[object, ...] = ()) -> logging.LogRecord:
    return logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)


def _access(path: str, status: int) -> logging.LogRecord:
    args = ("127.0.0.1:5000", "GET", path, "1.1", status)
    return _record("uvicorn.access", '%s - "%s %s HTTP/%s" %d', args)


def _written_by(component: str, record: logging.LogRecord, verbose: bool = False) -> str | None:
    """The line as the dev config prints it, from a task of ``component``; None if dropped."""
    context = contextvars.copy_context()
    context.run(COMPONENT.set, component)
    kept = context.run(QuietDevNoise(verbose).filter, record)
    context.run(LabelComponent().filter, record)
    line_format = dev_logging_config()["formatters"]["line"]["format"]
    return OneLineFormatter(line_format).format(record) if kept else None


def test_every_line_names_its_component() -> None:
    sandbox = _written_by("sandbox", _access("/a/oauth_authorize", 200))
    tsprov = _written_by("tsprov", _access("/v1/users/alice", 200))
    jobs = _written_by("tsprov", _record("tsprov.background", "background job x failed"))
    assert sandbox is not None
    assert " sandbox INFO uvicorn.access " in sandbox
    assert tsprov is not None
    assert " tsprov  INFO uvicorn.access " in tsprov
    assert jobs is not None
    assert " jobs    INFO tsprov.background " in jobs


def test_the_sandboxs_answers_to_tsprov_wait_for_debug_unless_they_failed() -> None:
    assert _written_by("sandbox", _access("/api/v2/tailnet/-/devices", 200)) is None
    assert _written_by("sandbox", _access("/api/v2/oauth/token", 401)) is not None
    assert _written_by("sandbox", _access("/api/v2/tailnet/-/devices", 200), verbose=True)
    assert _written_by("tsprov", _access("/api/v2/anything", 200)) is not None


def test_the_process_start_line_is_printed_once() -> None:
    started = "Started server process [%d]"
    assert _written_by("sandbox", _record("uvicorn.error", started, (42,))) is None
    assert _written_by("tsprov", _record("uvicorn.error", started, (42,))) is not None
