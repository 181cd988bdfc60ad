"""The ``tsprov`` command line: its subcommands, their arguments and help."""

from __future__ import annotations

import argparse

from service.callers.commands import add_callers_parser
from service.ops import app_register
from service.ops.cli.commands import (
    cmd_app,
    cmd_audit,
    cmd_callers,
    cmd_doctor,
    cmd_keys,
    cmd_local,
    cmd_migrate,
    cmd_serve,
    cmd_status,
    cmd_webhooks,
    positive,
)
from service.webhooks import commands as webhook_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tsprov",
        description="Provision Tailscale devices that carry a named person's identity.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument(
        "--workers",
        type=positive,
        default=1,
        help="processes sharing the port (each drains on SIGTERM); default 1",
    )
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("migrate", help="alembic upgrade head").set_defaults(func=cmd_migrate)
    status = sub.add_parser(
        "status",
        help="version, database, readiness, requests by status, the background loop's last run",
        description="What a deployment is doing, read from its database and settings. "
        "Exits 1 when it is not ready.",
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    status.set_defaults(func=cmd_status)
    sandbox = sub.add_parser("sandbox", help="run the Tailscale sandbox alone")
    sandbox.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sandbox.add_argument("--port", type=int, default=8088, help="port to listen on; default 8088")
    sandbox.set_defaults(func=cmd_local)
    dev = sub.add_parser("dev", help="everything on one machine, with a walkthrough")
    dev.add_argument("--port", type=int, default=8000, help="tsprov's port; default 8000")
    dev.add_argument(
        "--sandbox-port", type=int, default=8088, help="the sandbox's port; default 8088"
    )
    dev.add_argument(
        "--as",
        dest="as_login",
        metavar="LOGIN",
        help="also front tsprov with a stand-in for tailscale serve that signs you in as LOGIN "
        "(e.g. alice@example.com), to try /me and /console",
    )
    dev.add_argument(
        "--serve-port", type=int, default=8443, help="the serve stand-in's port; default 8443"
    )
    dev.add_argument(
        "--log-level",
        choices=["info", "debug"],
        default="info",
        help="info (default): what people and callers did; debug: also the background "
        "loop's polling of the sandbox",
    )
    dev.set_defaults(func=cmd_local)
    add_callers_parser(sub, cmd_callers)
    keys = sub.add_parser("keys", help="encryption key ring")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    generate = keys_sub.add_parser("generate", help="print a new key-ring entry")
    generate.add_argument(
        "--key-id",
        default=None,
        help="the entry's id: 1-32 letters, digits, '_' or '-'; default: k and 8 random hex digits",
    )
    generate.add_argument(
        "--signing", action="store_true", help="print a new audit signing key (Ed25519) instead"
    )
    keys_sub.add_parser("rewrap", help="move every sealed value to the primary key")
    keys.set_defaults(func=cmd_keys)
    audit = sub.add_parser("audit", help="the audit trail")
    audit_sub = audit.add_subparsers(dest="action", required=True)
    verify = audit_sub.add_parser("verify", help="check the hash chain and its signatures")
    verify.add_argument(
        "--expect",
        metavar="SEQ:HASH",
        help="a checkpoint published elsewhere: fail unless the chain still reaches it",
    )
    audit_sub.add_parser("seal", help="seal recorded events into the chain now and sign the head")
    audit_sub.add_parser("prune", help="delete events past retention, keeping a checkpoint")
    audit.set_defaults(func=cmd_audit)
    webhook_commands.add_parser(sub, cmd_webhooks)
    app_register.add_parser(sub, cmd_app)
    doctor = sub.add_parser("doctor", help="check settings, database, keys and Tailscale")
    doctor.set_defaults(func=cmd_doctor)
    return parser


# Failures an operator can act on: reported as one line, never as a traceback.
