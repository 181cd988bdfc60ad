"""What an operator reads: `tsprov status`, tables with headers, JSON, and help that explains."""

from __future__ import annotations

import json

import pytest

from service.crypto.keyring import generate_key_entry
from service.ops.cli import build_parser
from tests.helpers.cli_scratch import RunTsprov, assert_one_line_failure


def test_status_names_the_database_without_its_password_and_counts_requests(
    run_tsprov: RunTsprov, cli_database: str
) -> None:
    with_password = cli_database.replace("://postgres@", "://postgres:hunter2-pw@", 1)
    env = {"TSPROV_DATABASE_URL": with_password, "TSPROV_ENCRYPTION_KEYS": generate_key_entry()}
    shown = run_tsprov("status", **env)
    assert shown.returncode == 0, shown.stderr
    assert "hunter2" not in shown.stdout
    lines = dict(line.split(None, 1) for line in shown.stdout.splitlines())
    assert lines["version"].strip() == "0.1.0"
    assert "postgres:***@" in lines["database"]
    assert lines["ready"].strip() == "yes"
    assert "awaiting_consent 0" in lines["requests"]
    assert lines["background"].startswith("never run")
    report = json.loads(run_tsprov("status", "--json", **env).stdout)
    assert report["ready"] is True
    assert report["checks"] == {"encryption_keys": True, "database": True, "schema_at_head": True}
    assert set(report["requests"]) >= {"joined", "failed", "expired", "cancelled"}


def test_status_without_keys_says_it_is_not_ready_and_why(
    run_tsprov: RunTsprov, cli_database: str
) -> None:
    shown = run_tsprov("status", TSPROV_DATABASE_URL=cli_database, TSPROV_ENCRYPTION_KEYS="")
    assert shown.returncode == 1
    assert "no encryption keys" in shown.stdout


def test_status_with_no_database_is_one_line(run_tsprov: RunTsprov) -> None:
    url = "postgresql://postgres@127.0.0.1:1/tsprov"
    shown = run_tsprov("status", TSPROV_DATABASE_URL=url)
    assert shown.returncode == 1
    assert "the database does not answer" in shown.stdout
    assert_one_line_failure(run_tsprov("callers", "list", TSPROV_DATABASE_URL=url))


def test_callers_list_has_a_header(run_tsprov: RunTsprov, cli_database: str) -> None:
    made = run_tsprov("callers", "create", "cli-headed", "--scope", "read",
                      TSPROV_DATABASE_URL=cli_database)  # fmt: skip
    assert made.returncode == 0, made.stderr
    listed = run_tsprov("callers", "list", TSPROV_DATABASE_URL=cli_database)
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["NAME", "STATE", "SCOPES", "USERS", "CREATED_AT"]
    assert any(row.split()[:3] == ["cli-headed", "active", "read"] for row in rows)


def _options(parser: object) -> list[tuple[str, object]]:
    """Every option of every (sub)command, with the parser it belongs to."""
    found: list[tuple[str, object]] = []
    for action in parser._actions:  # type: ignore[attr-defined]  # argparse keeps no public list
        if action.choices and isinstance(action.choices, dict):
            for name, child in action.choices.items():
                found += [(f"{name} {option}", act) for option, act in _options(child)]
        elif action.dest != "help":
            found.append((action.dest, action))
    return found


def test_every_option_explains_itself() -> None:
    bare = [name for name, action in _options(build_parser()) if not action.help]  # type: ignore[attr-defined]
    assert bare == []


@pytest.mark.parametrize(
    ("option", "says"),
    [("--scope", ["provision, read, audit or admin", "repeat"]), ("--users", ["one or more"])],
)
def test_callers_create_help_lists_values_and_repetition(
    run_tsprov: RunTsprov, option: str, says: list[str]
) -> None:
    shown = run_tsprov("callers", "create", "--help")
    text = " ".join(shown.stdout.split())
    section = text[text.index(f"{option} ") :]
    for words in says:
        assert words in section
