"""``tsprov callers``: its options and how it lists callers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from service.callers.store import SCOPES
from service.models import Caller
from service.ops.tables import render_json, render_table


def callers_listing(rows: list[Caller], *, as_json: bool) -> str:
    """Every caller (never a key): a table with a header, or JSON."""
    headers = ("name", "state", "scopes", "users", "created_at")
    if as_json:
        return render_json(
            headers,
            [
                (row.name, "revoked" if row.revoked_at else "active", row.scopes,
                 row.user_patterns, row.created_at.isoformat(timespec="seconds"))
                for row in rows
            ],
        )  # fmt: skip
    table = [
        (row.name, "revoked" if row.revoked_at else "active", ",".join(row.scopes),
         ",".join(row.user_patterns) or "* (any user)", f"{row.created_at:%Y-%m-%d %H:%M}")
        for row in rows
    ]  # fmt: skip
    return render_table(headers, table)


def add_callers_parser(sub: Any, command: Callable[[argparse.Namespace], int]) -> None:
    """``tsprov callers create|list|revoke``, every option explained."""
    callers = sub.add_parser("callers", help="caller API keys")
    callers_sub = callers.add_subparsers(dest="action", required=True)
    create = callers_sub.add_parser("create", help="create a caller; prints its key last")
    create.add_argument("name", help="a unique name, shown in the audit trail as the actor")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=SCOPES,
        help="what the key may do: provision, read, audit or admin; repeat the option for "
        "more than one (--scope provision --scope read)",
    )
    create.add_argument(
        "--users",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="user ids the key may act for, where * matches any run of characters "
        "('*@eng.example.com'); one or more after a single --users; default: every user",
    )
    listing = callers_sub.add_parser("list", help="list callers (never their keys)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    revoke = callers_sub.add_parser("revoke", help="revoke a caller's key")
    revoke.add_argument("name", help="the caller's name, as `callers list` shows it")
    callers.set_defaults(func=command)
