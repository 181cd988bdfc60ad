"""``tsprov dev`` and ``tsprov sandbox``."""

from __future__ import annotations

import argparse
import asyncio
import socket
import time
from pathlib import Path

from sqlalchemy import make_url, select

from devstack.environment import DevEnvironment, load_dev_environment
from devstack.log_labels import dev_logging_config
from devstack.serve_standin import ServeStandIn
from devstack.stack import make_server, serve_together
from devstack.walkthrough import DEMO_LOGIN, DEMO_SCOPES, DEMO_USER, Banner, walkthrough
from sandbox.app import create_app as create_sandbox
from sandbox.server import run_sandbox
from sandbox.settings import SandboxSettings
from service.audit.events import ORIGIN_API, Actor
from service.callers.store import create_caller, revoke_caller
from service.db import create_engine, create_session_factory, transaction
from service.main import create_app
from service.models import Caller
from service.ops.devdb import resolve_database_url
from service.ops.migrate import upgrade_head
from service.settings import IdentityHeaders, Settings
from service.users.schemas import UserUpdate
from service.users.store import put_user

ROOT = Path(__file__).resolve().parent.parent
SECRETS_FILE = ROOT / ".tsprov" / "dev.env"
DEV_ACTOR = Actor(
    id="tsprov-dev", type="AUTOMATED_WORKER", login_name="tsprov dev", display_name="tsprov dev"
)


def run(args: argparse.Namespace) -> int:
    if args.command == "sandbox":
        run_sandbox(args.host, args.port)
        return 0
    started = time.monotonic()
    ports = (args.port, args.sandbox_port, *((args.serve_port,) if args.as_login else ()))
    for port in ports:
        if port_in_use(port):
            raise SystemExit(f"tsprov: port {port} is in use; stop what holds it or pick another")
    database_url, server = resolve_database_url(ROOT, "tsprov")
    try:
        upgrade_head(database_url)
        env = load_dev_environment(SECRETS_FILE)
        asyncio.run(_serve(env, database_url, args, started))
    finally:
        if server is not None:
            server.stop()
    return 0


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _settings(
    env: DevEnvironment, database_url: str, port: int, sandbox_url: str, as_login: str | None
) -> Settings:
    settings = Settings(
        env="development",
        database_url=database_url,
        public_url=f"http://127.0.0.1:{port}",
        tailscale_login_url=sandbox_url,
        tailscale_api_url=sandbox_url,
        tailscale_issuer=sandbox_url,
        oauth_client_id=env.app_client_id,
        oauth_client_secret=env.app_client_secret,
        observer_client_id=env.observer_client_id,
        observer_client_secret=env.observer_client_secret,
        encryption_keys=env.encryption_keys,
        audit_signing_key=env.audit_signing_key,
        return_to_allowlist=["/done"],
        background_interval_seconds=2,
    )
    if not as_login:
        return settings
    # The stand-in is the trusted proxy (from loopback, the default), and the login it names
    # may enter /console.
    serve = {"identity_headers": IdentityHeaders.TAILSCALE_SERVE, "console_admins": [as_login]}
    return settings.model_copy(update=serve)


def _sandbox_settings(env: DevEnvironment, port: int) -> SandboxSettings:
    return SandboxSettings(
        app_client_id=env.app_client_id,
        app_client_secret=env.app_client_secret,
        app_redirect_uris=[
            f"http://127.0.0.1:{port}/callback",
            f"http://localhost:{port}/callback",
        ],
        observer_client_id=env.observer_client_id,
        observer_client_secret=env.observer_client_secret,
    )


async def _seed_demo(settings: Settings) -> str:
    """The walkthrough's user with her expected login, and a fresh demo key able to do every
    step shown (keys are shown once, so each run makes one; older demo keys are revoked)."""
    engine = create_engine(settings)
    try:
        async with transaction(create_session_factory(engine)) as session:
            for name in await session.scalars(
                select(Caller.name).where(Caller.name.like("demo-%"), Caller.revoked_at.is_(None))
            ):
                await revoke_caller(session, name)
            _, key = await create_caller(session, f"demo-{int(time.time())}", list(DEMO_SCOPES), [])
            expected = UserUpdate(tailscale_login=DEMO_LOGIN)
            await put_user(session, DEV_ACTOR, DEMO_USER, expected, origin=ORIGIN_API)
        return key
    finally:
        await engine.dispose()


async def _serve(
    env: DevEnvironment, database_url: str, args: argparse.Namespace, started: float
) -> None:
    port, sandbox_port = args.port, args.sandbox_port
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    settings = _settings(env, database_url, port, sandbox_url, args.as_login)
    sandbox_settings = _sandbox_settings(env, port)
    key = await _seed_demo(settings)
    servers = {
        "sandbox": make_server(create_sandbox(sandbox_settings), sandbox_port, None),
        "tsprov": make_server(
            create_app(settings), port, dev_logging_config(args.log_level.upper())
        ),
    }
    serve_url = f"http://127.0.0.1:{args.serve_port}"
    if args.as_login:
        standin = ServeStandIn(settings.public_url, args.as_login)
        servers["serve"] = make_server(standin, args.serve_port, None)

    async def announce() -> None:
        banner = Banner(
            service_url=settings.public_url,
            sandbox_url=sandbox_url,
            sandbox_users=list(sandbox_settings.users),
            database=make_url(database_url).render_as_string(hide_password=True),
            secrets_file=_shown_path(SECRETS_FILE),
            seconds=time.monotonic() - started,
            serve_url=serve_url if args.as_login else None,
            signed_in_as=args.as_login,
        )
        print(walkthrough(banner, key), flush=True)

    await serve_together(servers, announce)


def _shown_path(path: Path) -> str:
    """The path as typed from the checkout, when it lies inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
