"""The application factory; nothing runs at import."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request, Response

from service import __version__
from service.audit import routes as audit_routes
from service.audit.events import event_group
from service.consent import routes as consent_routes
from service.crypto.keyring import KeyRing
from service.db import create_engine, create_session_factory
from service.jobs import BackgroundWorker
from service.ops import health
from service.provisioning import routes as provisioning_routes
from service.provisioning.notify import RequestNotifier
from service.settings import Settings
from service.state import AppContext
from service.tailscale.client import (
    OAuthCredentials,
    RetryPolicy,
    TailscaleClient,
    TailscaleEndpoints,
)
from service.users import routes as user_routes
from service.web.errors import ERROR_CODES
from service.web.openapi import document_problems
from service.web.problem_pages import install_handlers
from service.webhooks import routes as webhook_routes

DESCRIPTION = """Provision Tailscale devices that carry a named person's identity.

Callers authenticate with `Authorization: Bearer tsprov_…` keys made by `tsprov callers
create`. Errors are `application/problem+json` (RFC 9457) with a stable `code`:

| code | meaning |
|---|---|
"""


def api_description() -> str:
    rows = "".join(f"| `{code}` | {meaning} |\n" for code, meaning in ERROR_CODES.items())
    return DESCRIPTION + rows


def build_tailscale_client(settings: Settings, http: httpx.AsyncClient) -> TailscaleClient:
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
    )


def load_key_ring(settings: Settings) -> KeyRing | None:
    text = settings.key_ring_text
    return KeyRing.parse(text) if text else None


async def build_context(settings: Settings) -> AppContext:
    engine = create_engine(settings)
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0))
    return AppContext(
        settings=settings,
        engine=engine,
        sessions=create_session_factory(engine),
        key_ring=load_key_ring(settings),
        tailscale=build_tailscale_client(settings, http),
        notifier=RequestNotifier(settings.database_url),
    )


async def close_context(context: AppContext) -> None:
    await context.notifier.stop()
    await context.tailscale.aclose()
    await context.engine.dispose()


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
        await built.notifier.start()
        worker = BackgroundWorker(built)
        if run_background:
            worker.start()
        try:
            yield
        finally:
            built.draining = True
            await worker.stop()
            await close_context(built)

    app = FastAPI(
        title="tsprov", version=__version__, description=api_description(), lifespan=lifespan
    )
    if context is not None:
        app.state.context = context
    install_handlers(app)
    app.middleware("http")(_observe_request)
    routers = (health, consent_routes, provisioning_routes, user_routes, audit_routes)
    for router in (*routers, webhook_routes):
        app.include_router(router.router)
    document_problems(app)
    return app


async def _observe_request(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """One eventGroupID per request, and metrics labelled by route template, never raw path."""
    started = time.perf_counter()
    with event_group():
        response = await call_next(request)
    route = request.scope.get("route")
    template = getattr(route, "path", "unmatched")
    context: AppContext | None = getattr(request.app.state, "context", None)
    if context is not None:
        context.metrics.requests.labels(template, request.method, str(response.status_code)).inc()
        context.metrics.latency.labels(template).observe(time.perf_counter() - started)
    return response


__all__ = ["create_app"]
