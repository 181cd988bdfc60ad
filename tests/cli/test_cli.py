"""``tsprov`` as an operator runs it: results on stdout, failures as one line on stderr."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from service.audit.signing import AuditSigner
from service.crypto.keyring import KeyRing, generate_key_entry
from service.ops.cli import describe
from service.ops.devdb import DevDatabaseError
from service.settings import Settings
from tests.helpers.cli_scratch import RunTsprov, assert_one_line_failure, fetch_value

UNREACHABLE = {
    "unknown host": "postgresql://postgres@tsprov-no-such-host.invalid:5432/tsprov",
    "closed port": "postgresql://postgres@127.0.0.1:1/tsprov",
}


@pytest.mark.parametrize("url", UNREACHABLE.values(), ids=UNREACHABLE.keys())
@pytest.mark.parametrize("command", [["migrate"], ["callers", "list"], ["audit", "verify"]])
def test_an_unreachable_database_is_one_line(
    run_tsprov: RunTsprov, command: list[str], url: str
) -> None:
    assert_one_line_failure(run_tsprov(*command, TSPROV_DATABASE_URL=url))


def test_a_missing_database_is_named_in_one_line(run_tsprov: RunTsprov, cli_database: str) -> None:
    missing = cli_database.rsplit("/", 1)[0] + "/tsprov_cli_no_such_database"
    line = assert_one_line_failure(run_tsprov("callers", "list", TSPROV_DATABASE_URL=missing))
    assert 'database "tsprov_cli_no_such_database" does not exist' in line


def test_an_invalid_database_url_names_the_setting_but_not_its_value(
    run_tsprov: RunTsprov,
) -> None:
    url = "mysql://admin:hunter2-not-a-real-password@db.example/tsprov"
    line = assert_one_line_failure(run_tsprov("migrate", TSPROV_DATABASE_URL=url))
    assert "DATABASE_URL" in line
    assert "hunter2" not in line


@pytest.mark.parametrize(
    "key_ring",
    ["not-a-key-ring", "k1:c2hvcnQ", "k1:!!!not*base64!!!", ""],
    ids=["no key id", "short key", "not base64", "empty"],
)
def test_a_bad_key_ring_is_one_line_without_the_key(
    run_tsprov: RunTsprov, cli_database: str, key_ring: str
) -> None:
    process = run_tsprov(
        "keys", "rewrap", TSPROV_DATABASE_URL=cli_database, TSPROV_ENCRYPTION_KEYS=key_ring
    )
    line = assert_one_line_failure(process)
    assert "key" in line
    if key_ring:
        assert key_ring.split(":")[-1] not in line


def test_rewrap_with_a_good_key_ring_succeeds(run_tsprov: RunTsprov, cli_database: str) -> None:
    process = run_tsprov(
        "keys",
        "rewrap",
        TSPROV_DATABASE_URL=cli_database,
        TSPROV_ENCRYPTION_KEYS=generate_key_entry("cli1"),
    )
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip() == "rewrapped 0 values under key cli1"


def test_keys_generate_prints_an_entry_the_key_ring_accepts(run_tsprov: RunTsprov) -> None:
    process = run_tsprov("keys", "generate", "--key-id", "2026a")
    assert process.returncode == 0, process.stderr
    ring = KeyRing.parse(process.stdout.strip())
    assert ring.primary_id == "2026a"
    assert_one_line_failure(run_tsprov("keys", "generate", "--key-id", "no spaces allowed"))


def test_callers_create_prints_the_key_last_and_list_never_shows_it(
    run_tsprov: RunTsprov, cli_database: str
) -> None:
    created = run_tsprov(
        "callers", "create", "cli-reporting", "--scope", "read", "--scope", "audit",
        "--users", "*@eng.example.com", TSPROV_DATABASE_URL=cli_database,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    key = created.stdout.splitlines()[-1]
    assert key.startswith("tsprov_")
    assert key.strip() == key
    assert " " not in key

    for listing in (["--json"], []):
        listed = run_tsprov("callers", "list", *listing, TSPROV_DATABASE_URL=cli_database)
        assert listed.returncode == 0, listed.stderr
        assert key not in listed.stdout
        assert key.removeprefix("tsprov_") not in listed.stdout
    rows = json.loads(
        run_tsprov("callers", "list", "--json", TSPROV_DATABASE_URL=cli_database).stdout
    )
    row = next(row for row in rows if row["name"] == "cli-reporting")
    assert (row["state"], row["users"]) == ("active", ["*@eng.example.com"])
    assert set(row["scopes"]) == {"read", "audit"}


def test_creating_a_caller_twice_is_one_line(run_tsprov: RunTsprov, cli_database: str) -> None:
    first = run_tsprov("callers", "create", "cli-twice", "--scope", "read",
                       TSPROV_DATABASE_URL=cli_database)  # fmt: skip
    assert first.returncode == 0, first.stderr
    again = run_tsprov("callers", "create", "cli-twice", "--scope", "read",
                       TSPROV_DATABASE_URL=cli_database)  # fmt: skip
    assert_one_line_failure(again)
    assert again.stdout == ""


def test_audit_verify_holds_on_a_fresh_database(
    run_tsprov: RunTsprov, fresh_database: str, app_role: str
) -> None:
    env = {"TSPROV_DATABASE_URL": fresh_database, "TSPROV_APP_ROLE": app_role}
    assert run_tsprov("migrate", **env).returncode == 0
    process = run_tsprov("audit", "verify", **env)
    assert process.returncode == 0, process.stderr
    assert process.stdout.startswith("audit chain holds")


def test_audit_verify_reports_a_rewritten_event_in_one_line(
    run_tsprov: RunTsprov, fresh_database: str, app_role: str
) -> None:
    env = {"TSPROV_DATABASE_URL": fresh_database, "TSPROV_APP_ROLE": app_role}
    assert run_tsprov("migrate", **env).returncode == 0
    assert run_tsprov("callers", "create", "cli-audited", "--scope", "read", **env).returncode == 0
    assert run_tsprov("audit", "seal", **env).stdout == "sealed 1 events\n"
    event_id = fetch_value(
        fresh_database,
        "UPDATE audit_event SET error = 'rewritten' "
        "WHERE seq = (SELECT max(seq) FROM audit_event) RETURNING id",
    )
    line = assert_one_line_failure(run_tsprov("audit", "verify", **env))
    assert f"audit chain broken at event {event_id}" in line


def test_a_database_error_shows_the_reason_but_not_the_statement(
    run_tsprov: RunTsprov, fresh_database: str
) -> None:
    process = run_tsprov("callers", "list", TSPROV_DATABASE_URL=fresh_database)
    line = assert_one_line_failure(process)
    assert line == 'tsprov: database error: relation "caller" does not exist'


@pytest.mark.parametrize(
    "error",
    [
        OSError("cannot reach postgresql://svc:s3cret-pw@db.internal:5432/tsprov"),
        DevDatabaseError("Postgres at postgresql+asyncpg://svc:s3cret-pw@db/tsprov is gone"),
    ],
)
def test_a_reason_never_carries_a_password(error: Exception) -> None:
    reason = describe(error)
    assert "s3cret-pw" not in reason
    assert "***@db" in reason


def test_an_invalid_setting_is_named_without_its_value() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(env="development", database_url="sqlite:///s3cret-pw.db", db_pool_size=0)
    reason = describe(caught.value)
    assert reason.startswith("invalid setting DATABASE_URL: DATABASE_URL must be a postgresql")
    assert reason.endswith("(and 1 more)")
    assert "s3cret-pw" not in reason


def test_keys_generate_signing_prints_a_key_the_service_accepts(run_tsprov: RunTsprov) -> None:
    process = run_tsprov("keys", "generate", "--signing")
    assert process.returncode == 0, process.stderr
    signer = AuditSigner.parse(process.stdout.strip())
    assert len(signer.key_id) == 16


def test_item_42_audit_verify_expect_catches_a_cut_tail(
    run_tsprov: RunTsprov, fresh_database: str, app_role: str
) -> None:
    key = run_tsprov("keys", "generate", "--signing").stdout.strip()
    env = {"TSPROV_DATABASE_URL": fresh_database, "TSPROV_APP_ROLE": app_role,
           "TSPROV_AUDIT_SIGNING_KEY": key}  # fmt: skip
    assert run_tsprov("migrate", **env).returncode == 0
    for name in ("cli-first", "cli-second"):
        assert run_tsprov("callers", "create", name, "--scope", "read", **env).returncode == 0
    sealed = run_tsprov("audit", "seal", **env)
    assert sealed.returncode == 0, sealed.stderr
    published = sealed.stdout.splitlines()[-1].removeprefix("checkpoint ")
    holds = run_tsprov("audit", "verify", "--expect", published, **env)
    assert holds.returncode == 0, holds.stderr
    assert "2 sealed events checked, up to the checkpoint at count 2" in holds.stdout
    fetch_value(
        fresh_database,
        "WITH cut AS (DELETE FROM audit_signed_checkpoint) "
        "DELETE FROM audit_event WHERE seq = (SELECT max(seq) FROM audit_event) RETURNING id",
    )
    assert run_tsprov("audit", "verify", **env).returncode == 0  # nothing left here to tell
    line = assert_one_line_failure(run_tsprov("audit", "verify", "--expect", published, **env))
    assert "missing: the expected checkpoint's event" in line
    assert "--expect" in assert_one_line_failure(
        run_tsprov("audit", "verify", "--expect", "12:nothex", **env)
    )
