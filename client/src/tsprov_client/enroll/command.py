"""``tsprov-enroll``: ask tsprov for a key for a person, show them the consent link, join.

    TSPROV_API_KEY=… tsprov-enroll --server https://tsprov.internal --user alice

The caller key comes from ``TSPROV_API_KEY`` or ``--key-file``, never from an argument, so
it stays out of the process list and shell history; the auth key reaches ``tailscale up``
through a private file. Exit statuses are listed in ``exit_codes.ExitCode``.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import segno

from tsprov_client.client import Client
from tsprov_client.enroll.exit_codes import ExitCode, exit_code_for
from tsprov_client.enroll.tailscale_up import run_tailscale_up
from tsprov_client.errors import ConsentPending, TsprovError
from tsprov_client.models import Provisioned, ProvisioningRequest

KEY_VARIABLE = "TSPROV_API_KEY"
PROGRAM = "tsprov-enroll"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class UsageError(Exception):
    """A problem with how the command was called; exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Put this machine on the tailnet as USER: tsprov asks USER to consent, "
        "then this runs `tailscale up` with the key. The caller key comes from "
        f"{KEY_VARIABLE} or --key-file, never from an argument.",
        epilog="Exit status: 0 joined, 1 other failure, 2 usage, 3 declined or cancelled, "
        "4 no consent in time, 5 another or unconfirmed Tailscale login, "
        "6 tailscale up failed, 130 interrupted.",
    )
    parser.add_argument("--server", required=True, help="tsprov's URL")
    parser.add_argument("--user", required=True, help="the user ID this device is for")
    parser.add_argument("--hostname", help="the device's name on the tailnet")
    parser.add_argument(
        "--tags",
        nargs="+",
        action="extend",
        default=[],
        metavar="TAG",
        help="tags for the key (tag:name; reusable grants only)",
    )
    parser.add_argument(
        "--print-only",
        action="store_true",
        help="print the `tailscale up` line (it holds the key) instead of running it",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for consent (default 600)",
    )
    parser.add_argument(
        "--key-file", type=Path, help=f"read the caller key here, not {KEY_VARIABLE}"
    )
    parser.add_argument("--no-qr", action="store_true", help="show the link without a QR code")
    return parser


def read_caller_key(key_file: Path | None) -> str:
    """The caller key from ``key_file`` or the environment; never from an argument."""
    if key_file is not None:
        try:
            mode = key_file.stat().st_mode
            key = key_file.read_text().strip()
        except OSError as exc:
            raise UsageError(f"cannot read --key-file: {exc.strerror}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            say(f"warning: {key_file} is readable by others; chmod 600 it")
    else:
        key = os.environ.get(KEY_VARIABLE, "").strip()
    if not key:
        raise UsageError(f"no caller key: set {KEY_VARIABLE} or pass --key-file PATH")
    return key


def warn_if_cleartext(server: str) -> None:
    parts = urlsplit(server)
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        say(f"warning: {server} is not https: both keys would cross the network readable")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def show_consent_link(url: str, user: str, with_qr: bool) -> None:
    say(f"\nTo put this machine on the tailnet as {user}, open this link and approve:\n")
    say(f"  {url}\n")
    if with_qr:
        segno.make(url, error="l").terminal(out=sys.stderr, compact=True, border=2)
    say("Waiting for consent…")


def obtain_key(client: Client, args: argparse.Namespace) -> Provisioned:
    """Create the request, show its consent link, wait for consent and claim the key."""
    wait = timedelta(seconds=args.wait)
    try:
        return client.provision(args.user, hostname=args.hostname, tags=args.tags, wait=wait)
    except ConsentPending as pending:
        show_consent_link(str(pending.consent_url), args.user, not args.no_qr)
        return _collect_or_cancel(client, pending.request, wait, args)


def _collect_or_cancel(
    client: Client, request: ProvisioningRequest, wait: timedelta, args: argparse.Namespace
) -> Provisioned:
    def show_replacement(url: str) -> None:
        say("tsprov issued a new consent link; the one above no longer works.")
        show_consent_link(url, args.user, not args.no_qr)

    try:
        return client.collect(
            request.id, wait=wait, on_consent_url=show_replacement, cancel_on_timeout=True
        )
    except KeyboardInterrupt:
        # Nobody will claim it now: cancelling kills the link and wipes any key it holds.
        try:
            client.cancel(request.id)
        except TsprovError:
            say("could not cancel the request; it expires on its own")
        raise


def enroll(args: argparse.Namespace) -> ExitCode:
    key = read_caller_key(args.key_file)
    if args.wait <= 0:
        raise UsageError("--wait must be positive")
    warn_if_cleartext(args.server)
    try:
        client = Client(args.server, key)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    with client:
        device = obtain_key(client, args)
    who = device.login_name or args.user
    if args.print_only:
        say(f"Consent given by {who}. The line below holds a one-use key; keep it private.")
        print(device.tailscale_up, flush=True)
        return ExitCode.JOINED
    say(f"Consent given by {who}; running tailscale up.")
    status = run_tailscale_up(device.auth_key, device.hostname or args.hostname)
    if status != 0:
        say(f"{PROGRAM}: tailscale up failed with status {status}")
        return ExitCode.TAILSCALE_FAILED
    say(f"Joined the tailnet as {who}.")
    return ExitCode.JOINED


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(enroll(args))
    except UsageError as exc:
        say(f"{PROGRAM}: {exc}")
        return int(ExitCode.USAGE)
    except TsprovError as exc:
        say(f"{PROGRAM}: {exc}")
        return int(exit_code_for(exc))
    except KeyboardInterrupt:
        say(f"{PROGRAM}: interrupted")
        return int(ExitCode.INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
