"""What each ``tsprov`` subcommand does; the parser (``cli.parser``) routes to these."""

from __future__ import annotations

import argparse
import asyncio
import importlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from service.ops import app_register
from service.settings import Settings

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


def positive(text: str) -> int:
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
