"""``tsprov``: serve, migrate, callers, keys, audit; ``dev`` and ``sandbox`` for local runs."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from alembic.util.exc import CommandError as AlembicCommandError
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from service.audit.commands import ExpectationError
from service.audit.signing import SigningKeyError
from service.callers.commands import add_callers_parser
from service.crypto.keyring import DecryptionError, KeyRingError
from service.ops import app_register
from service.ops.app_role import AppRoleError
from service.ops.devdb import DevDatabaseError
from service.settings import Settings
from service.webhooks import commands as webhook_commands

Command = Callable[[argparse.Namespace], int]
T = TypeVar("T")


class CommandError(Exception):
    """A one-line reason for a non-zero exit."""


def admin_settings() -> Settings:
    """Settings for admin commands: they need the database, not the OAuth secret."""
    return Settings(env="development")


def _with_sessions(work: Callable[[Any], Awaitable[T]]) -> T:
    from service.db import create_engine, create_session_factory

    async def run() -> T:
        engine = create_engine(admin_settings())
        try:
            return await work(create_session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _positive(text: str) -> int:
    if (value := int(text)) < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def cmd_serve(args: argparse.Namespace) -> int:
    from service.ops.server import serve

    return serve(Settings(), host=args.host, port=args.port, workers=args.workers)


def cmd_migrate(_args: argparse.Namespace) -> int:
    from service.ops.migrate import upgrade_head

    settings = admin_settings()
    upgrade_head(settings.database_url, settings.app_role)
    print("migrated to head")
    return 0


def cmd_callers(args: argparse.Namespace) -> int:
    from service.callers import store as callers
    from service.callers.commands import callers_listing
    from service.db import transaction

    async def work(sessions: Any) -> int:
        async with transaction(sessions) as session:
            if args.action == "create":
                caller, key = await callers.create_caller(
                    session, args.name, args.scope or [], args.users or []
                )
                print(f"created caller {caller.name} with scopes {', '.join(caller.scopes)}")
                print(key)  # shown once: the last line of stdout alone
            elif args.action == "revoke":
                await callers.revoke_caller(session, args.name)
                print(f"revoked {args.name}")
            else:
                print(callers_listing(await callers.list_callers(session), as_json=args.json))
        return 0

    try:
        return _with_sessions(work)
    except callers.CallerError as exc:
        raise CommandError(str(exc)) from exc


def cmd_status(args: argparse.Namespace) -> int:
    from service.ops.status import gather_status, render_status

    settings = admin_settings()
    status = _with_sessions(lambda sessions: gather_status(settings, sessions))
    print(render_status(status, as_json=args.json))
    return 0 if status.ready else 1


def cmd_keys(args: argparse.Namespace) -> int:
    from service.crypto.keyring import KeyRing, generate_key_entry

    if args.action == "generate":
        if args.signing:
            from service.audit.signing import generate_signing_key

            print(generate_signing_key())
        else:
            print(generate_key_entry(args.key_id))
        return 0
    from service.crypto.rewrap import rewrap_all

    text = admin_settings().key_ring_text
    if not text:
        raise CommandError("no encryption key: set TSPROV_ENCRYPTION_KEYS or _FILE")
    key_ring = KeyRing.parse(text)
    report = _with_sessions(lambda sessions: rewrap_all(sessions, key_ring))
    print(f"rewrapped {report.moved} values under key {key_ring.primary_id}")
    if not report.complete:
        raise CommandError(
            f"{report.remaining} values are still under older keys (their rows stayed busy); "
            "keep those keys and run rewrap again"
        )
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from service.audit.commands import run

    return run(args, _with_sessions, admin_settings())


def cmd_webhooks(args: argparse.Namespace) -> int:
    from service.webhooks.commands import run

    return run(args, _with_sessions, admin_settings())


def cmd_app(args: argparse.Namespace) -> int:
    try:
        return app_register.run(admin_settings(), args.name, args.secret_file)
    except app_register.AppRegisterError as exc:
        raise CommandError(str(exc)) from exc


def cmd_doctor(args: argparse.Namespace) -> int:
    from service.ops.doctor.run import run

    return run(args)


def cmd_local(args: argparse.Namespace) -> int:
    # Development tooling lives outside the deployed package, so it is imported on demand.
    module = importlib.import_module("devstack.cli")
    result: int = module.run(args)
    return result


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
        type=_positive,
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
REPORTED = (
    CommandError,
    DevDatabaseError,
    ValidationError,
    SQLAlchemyError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    KeyRingError,
    DecryptionError,
    SigningKeyError,
    ExpectationError,
    AppRoleError,
    AlembicCommandError,
    OSError,
)
# A URL's user:password@ part, wherever a library quotes the URL it was given.
CREDENTIALS = re.compile(r"(?<=://)[^/@\s]*@")


def describe(exc: BaseException) -> str:
    """A one-line reason for ``exc`` that carries no SQL parameters, input values or passwords."""
    if isinstance(exc, ValidationError):
        reason = _describe_invalid_setting(exc)
    elif isinstance(exc, DBAPIError) and exc.orig is not None:
        # The driver's own message: SQLAlchemy's text appends the statement and parameters.
        reason = f"database error: {exc.orig}"
    elif isinstance(exc, SQLAlchemyError):
        reason = f"database error: {exc.args[0] if exc.args else type(exc).__name__}"
    else:
        reason = str(exc)
    lines = reason.strip().splitlines()
    return CREDENTIALS.sub("***@", lines[0]) if lines else type(exc).__name__


def _describe_invalid_setting(exc: ValidationError) -> str:
    # The input is left out on purpose: the invalid value may be a secret.
    errors = exc.errors(include_input=False, include_url=False)
    first = errors[0]
    message = first["msg"].removeprefix("Value error, ")
    name = ".".join(str(part) for part in first["loc"]).upper()
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid setting {name}: {message}{more}" if name else f"{message}{more}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except REPORTED as exc:
        print(f"tsprov: {describe(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
