"""The application factory; nothing runs at import."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from service import __version__
from service.audit import routes as audit_routes
from service.audit.signing import AuditSigner
from service.consent import routes as consent_routes
from service.console.routes import install_console
from service.crypto.keyring import KeyRing
from service.db import create_engine, create_session_factory
from service.jobs import BackgroundWorker
from service.ops import health
from service.ops.app_role import runtime_role_problems
from service.ops.metrics import Metrics
from service.ops.observe import ObserveRequests
from service.ops.tracing import trace_app, trace_clients
from service.provisioning import routes as provisioning_routes
from service.provisioning.notify import RequestNotifier
from service.provisioning.waits import LongPollLimits
from service.settings import Settings
from service.state import AppContext
from service.tailscale.client import (
    OAuthCredentials,
    RetryPolicy,
    TailscaleClient,
    TailscaleEndpoints,
)
from service.users import routes as user_routes
from service.web import problem_catalogue as catalogue
from service.web.body_limit import BoundedBody
from service.web.docs_policy import DocsPolicy
from service.web.flood_gate import RefuseFloodsEarly
from service.web.forwarded import KeepPeer
from service.web.openapi import document_problems
from service.web.pages import FrameGuard
from service.web.problem_codes import ERROR_CODES
from service.web.problem_pages import install_handlers
from service.web.refusals import RefusalGuard
from service.webhooks import routes as webhook_routes
from service.webhooks.subscriptions import SESSION_INFO_KEY as SUBSCRIPTIONS_KEY
from service.webhooks.subscriptions import SubscribedEvents

DOCS_ASSETS = "/docs-assets"
# The sections of /docs in this order, whatever order the routes are matched in.
DOCS_SECTIONS = (
    "pages for tailnet users (browser)",
    "operations",
    "consent (browser)",
    "provisioning requests",
    "users, grants and devices",
    "audit",
    "webhooks",
)
DESCRIPTION = """Provision Tailscale devices that carry a named person's identity.

Callers authenticate with `Authorization: Bearer tsprov_…` keys made by `tsprov callers
create` (on this page: **Authorize**, then **Try it out**). Errors are
`application/problem+json` (RFC 9457) with a stable `code`; each answer's `type` is a page
here, `/problems/{code}`, saying what the code means and what to do:

| code | meaning |
|---|---|
"""


def api_description() -> str:
    rows = "".join(f"| `{code}` | {meaning} |\n" for code, meaning in ERROR_CODES.items())
    return DESCRIPTION + rows


def build_tailscale_client(
    settings: Settings, http: httpx.AsyncClient, metrics: Metrics | None = None
) -> TailscaleClient:
    observer = None
    if settings.observer_client_id:
        observer = OAuthCredentials(settings.observer_client_id, settings.observer_client_secret)
    return TailscaleClient(
        http,
        TailscaleEndpoints(
            settings.tailscale_login_url, settings.tailscale_api_url, settings.tailnet
        ),
        OAuthCredentials(settings.oauth_client_id, settings.oauth_client_secret),
        observer,
        identity_field=settings.token_login_field or None,
        policy=RetryPolicy(
            connect_timeout=settings.upstream_connect_timeout_seconds,
            read_timeout=settings.upstream_read_timeout_seconds,
            deadline=settings.upstream_deadline_seconds,
            max_attempts=settings.upstream_max_attempts,
        ),
        telemetry=metrics,
    )


# Idle upstream connections are closed after 4 s, before the server's side would be: many
# servers and proxies (the sandbox's uvicorn among them) close them at 5 s, httpx's default
# too. A mint sent on a connection the server is closing that instant fails with its outcome
# unknown, and the claim with a 503; a refresh storm after a pause of a few seconds met it.
UPSTREAM_POOL = httpx.Limits(
    max_connections=100, max_keepalive_connections=20, keepalive_expiry=4.0
)


def load_key_ring(settings: Settings) -> KeyRing | None:
    text = settings.key_ring_text
    return KeyRing.parse(text) if text else None


def load_audit_signer(settings: Settings) -> AuditSigner | None:
    text = settings.audit_signing_key_text
    return AuditSigner.parse(text) if text else None


async def build_context(settings: Settings) -> AppContext:
    engine = create_engine(settings)
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0), limits=UPSTREAM_POOL)
    metrics = Metrics()
    trace_clients(engine, http)
    notifier = RequestNotifier(settings.listen_url)
    subscriptions = SubscribedEvents(lambda: notifier.config_generation)
    return AppContext(
        settings=settings,
        engine=engine,
        sessions=create_session_factory(engine, {SUBSCRIPTIONS_KEY: subscriptions}),
        key_ring=load_key_ring(settings),
        tailscale=build_tailscale_client(settings, http, metrics),
        notifier=notifier,
        metrics=metrics,
        audit_signer=load_audit_signer(settings),
        refusals=RefusalGuard(settings.refusal_burst, settings.refusal_per_second),
        waits=LongPollLimits(settings.long_poll_limit_per_caller, settings.long_poll_limit),
    )


async def close_context(context: AppContext) -> None:
    await context.refusals.stop(context.sessions)
    await context.notifier.stop()
    await context.tailscale.aclose()
    await context.engine.dispose()


async def refuse_unsafe_database_role(context: AppContext) -> None:
    """Stop a production start whose database role could rewrite the audit trail."""
    try:
        async with context.engine.connect() as connection:
            problems = await runtime_role_problems(connection)
    except (OSError, DBAPIError, PoolTimeout) as exc:
        await close_context(context)
        # Fail closed: a role nobody could check is not known to be safe.
        raise RuntimeError(
            f"refusing to start: cannot check the database role ({type(exc).__name__})"
        ) from exc
    if problems:
        await close_context(context)
        raise RuntimeError("refusing to start in production: " + "; ".join(problems))


def set_start_up_aside() -> None:
    """What exists once the app has started (modules, routes, the ORM's mappings: about
    150,000 objects) lives as long as the process. The collector's full passes walked all of
    it, 50-150 ms here with the event loop stopped, and every request waiting behind them;
    frozen, a full pass walks only what was made since."""
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings | None = None,
    *,
    context: AppContext | None = None,
    run_background: bool = True,
) -> FastAPI:
    """Build the app; with ``context`` the caller owns the engine and clients (tests)."""
    settings = settings or (context.settings if context else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if context is not None:
            app.state.context = context
            yield
            return
        app.state.context = built = await build_context(settings)
        if settings.env == "production":
            await refuse_unsafe_database_role(built)
        await built.notifier.start()
        built.refusals.start(built.sessions)
        worker = BackgroundWorker(built)
        if run_background:
            worker.start()
        set_start_up_aside()
        try:
            yield
        finally:
            built.draining = True
            await worker.stop()
            await close_context(built)

    # The docs pages' scripts and styles are served by tsprov itself: a CDN is out of reach
    # on a locked-down network, and /docs would be a blank page.
    app = FastAPIOffline(
        title="tsprov",
        version=__version__,
        description=api_description(),
        lifespan=lifespan,
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"tryItOutEnabled": True, "displayRequestDuration": True},
        openapi_tags=[{"name": name} for name in DOCS_SECTIONS],
        # tsprov traces through the OpenTelemetry instrumentation (service.ops.tracing) and
        # counts with its own /metrics; FastAPI's own telemetry, left on, would look up the
        # global providers (environment variables included) on every request, refusals too.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    if context is not None:
        app.state.context = context
    install_handlers(app)
    # Routes are matched in the order they were added, one by one: the API callers use most
    # goes first (a match costs tens of µs per router passed on the way), the pages after.
    for router in (provisioning_routes, user_routes, audit_routes, webhook_routes, health):
        app.include_router(router.router)
    install_console(app, settings)
    for router in (consent_routes, catalogue):
        app.include_router(router.router)
    app.add_middleware(DocsPolicy, paths=("/docs", "/redoc"))
    app.add_middleware(ObserveRequests)
    app.add_middleware(RefuseFloodsEarly)
    app.add_middleware(FrameGuard)
    # Added last, so it is outermost: a body is bounded before anything else runs.
    app.add_middleware(
        BoundedBody,
        max_bytes=settings.max_body_bytes,
        timeout_seconds=settings.body_timeout_seconds,
    )
    # Outside even that: the TCP peer is noted before X-Forwarded-For names the client.
    app.add_middleware(KeepPeer)
    trace_app(app)
    document_problems(app)
    return app


__all__ = ["create_app"]
