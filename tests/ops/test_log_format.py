"""JSON logs: one object per line whatever the input, the request's fields, no query string."""

from __future__ import annotations

import json
import logging

import pytest

from service.ops.logs import LogFormat, logging_config
from service.ops.request_id import request_scope
from service.settings import Settings
from tests.security.logcapture import ProductionLogs

HOSTILE = "a\nb\r\nc\u2028d\u2029e\x85f\x1b[31mg"


def test_production_logs_json_and_development_logs_text() -> None:
    production = Settings.model_construct(env="production", log_format="")
    development = Settings.model_construct(env="development", log_format="")
    assert production.effective_log_format == "json"
    assert development.effective_log_format == "text"
    chosen = Settings.model_construct(env="production", log_format="text")
    assert chosen.effective_log_format == "text"


def test_json_goes_to_stdout_and_text_to_stderr() -> None:
    json_handler = logging_config(log_format="json")["handlers"]["stdout"]
    text_handler = logging_config(log_format="text")["handlers"]["stdout"]
    assert json_handler["stream"] == "ext://sys.stdout"
    assert text_handler["stream"] == "ext://sys.stderr"


def test_a_hostile_message_stays_one_json_line() -> None:
    with ProductionLogs(log_format="json", only_this_thread=True) as logs:
        logging.getLogger("tsprov.test").warning("user said %s", HOSTILE)
    lines = logs.lines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["message"] == f"user said {HOSTILE}"
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "tsprov.test"
    assert entry["request_id"] is None


def test_a_traceback_is_one_json_line_with_the_request_id() -> None:
    with ProductionLogs(log_format="json", only_this_thread=True) as logs, request_scope("r-42"):
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    (line,) = logs.lines()
    entry = json.loads(line)
    assert entry["request_id"] == "r-42"
    assert "Traceback" in entry["exception"]
    assert "ValueError: boom\nsecond line" in entry["exception"]


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_uvicorn_access_lines_show_in_text_only(log_format: LogFormat) -> None:
    with ProductionLogs(log_format=log_format, only_this_thread=True) as logs:
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1", "GET", "/callback?code=c&state=s", "1.1", 303
        )
    lines = logs.lines()
    if log_format == "json":
        assert lines == []
    else:
        assert len(lines) == 1
        assert "code=c" not in lines[0]
        assert "/callback?[redacted]" in lines[0]


def test_text_lines_carry_the_request_id() -> None:
    with ProductionLogs(only_this_thread=True) as logs, request_scope("r-text-1"):
        logging.getLogger("tsprov.test").info("hello")
    assert "[r-text-1] hello" in logs.lines()[0]
