"""``tsprov webhooks``: add prints the secret once, last; list never shows it; a refused
destination or an unknown id is one line on stderr."""

from __future__ import annotations

from service.crypto.keyring import generate_key_entry
from tests.helpers.cli_scratch import RunTsprov, assert_one_line_failure

KEYS = generate_key_entry("cliwh")


def test_add_list_remove(run_tsprov: RunTsprov, cli_database: str) -> None:
    env = {"TSPROV_DATABASE_URL": cli_database, "TSPROV_ENCRYPTION_KEYS": KEYS}
    added = run_tsprov(
        "webhooks", "add", "https://93.184.216.34/tsprov",
        "--event", "provisioning_request.ready", "--event", "grant.revoked", **env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    *_, secret = added.stdout.splitlines()
    assert secret.startswith("whsec_")
    webhook_id = added.stdout.split()[2]

    listed = run_tsprov("webhooks", "list", **env)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith(webhook_id))
    assert row.split("\t")[1:] == [
        "active",
        "https://93.184.216.34/tsprov",
        "grant.revoked,provisioning_request.ready",
    ]
    assert secret not in listed.stdout

    removed = run_tsprov("webhooks", "remove", webhook_id, **env)
    assert removed.returncode == 0, removed.stderr
    assert webhook_id not in run_tsprov("webhooks", "list", **env).stdout
    assert_one_line_failure(run_tsprov("webhooks", "remove", webhook_id, **env))


def test_a_private_or_loopback_url_is_refused_in_one_line(
    run_tsprov: RunTsprov, cli_database: str
) -> None:
    env = {"TSPROV_DATABASE_URL": cli_database, "TSPROV_ENCRYPTION_KEYS": KEYS}
    for url in ("https://10.0.0.8/hook", "https://127.0.0.1/hook"):
        refused = run_tsprov("webhooks", "add", url, "--event", "grant.revoked", **env)
        line = assert_one_line_failure(refused)
        assert "TSPROV_WEBHOOK_ALLOWED_NETWORKS" in line
        assert refused.stdout == ""
