"""Annotated dependencies: the context, a committed-on-success session, the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import (
    ANONYMOUS,
    ORIGIN_API,
    Actor,
    caller_actor,
    record_refused_attempt,
)
from service.callers.store import (
    AuthenticatedCaller,
    authenticate_caller,
    hash_caller_key,
    scope_allows,
    user_allowed,
    well_formed_key,
)
from service.crypto.keyring import KeyRing
from service.db import read_alone
from service.state import AppContext
from service.web.errors import Forbidden, Unauthorized
from service.web.flood_gate import stop_counting
from service.web.refusals import THROTTLED_KEY, Refusal, bearer_key


async def get_context(request: Request) -> AppContext:
    # Async although it awaits nothing: FastAPI runs a plain function dependency in a worker
    # thread, a hand-off every request (a flood of refusals included) would pay.
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


async def get_session(context: ContextDep) -> AsyncIterator[AsyncSession]:
    """One session per request, committed before the response leaves, rolled back on error."""
    async with context.sessions() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_key_ring(context: ContextDep) -> KeyRing:
    return context.require_key_ring()


KeyRingDep = Annotated[KeyRing, Depends(get_key_ring)]


async def refuse(
    context: AppContext, request: Request, actor: Actor, error: str, user_id: str | None = None
) -> None:
    """Audit a refused attempt in its own transaction: the request's own work rolls back."""
    await record_refused_attempt(
        context.sessions,
        actor=actor,
        method=request.method,
        path=request.url.path,
        error=error,
        user_id=user_id,
    )


def source_address(request: Request) -> str:
    """The client's address (from X-Forwarded-For only from trusted proxies: web.forwarded)."""
    return request.client.host if request.client else "unknown"


async def refuse_anonymous(
    context: AppContext, request: Request, error: str, *, key: str = "", origin: str = ORIGIN_API
) -> None:
    """Audit a refused anonymous request, folded per source; 429 once it floods."""
    refusal = Refusal(ANONYMOUS, request.method, request.url.path, error, origin)
    await context.refusals.refused(context.sessions, source_address(request), key, refusal)


async def authenticated_caller(request: Request, context: ContextDep) -> AuthenticatedCaller:
    key = bearer_key(request.headers.get("authorization", ""))
    caller = context.callers.get(hash_caller_key(key)) if well_formed_key(key) else None
    if caller is not None:  # proven here lately, and unchanged since (service.config_cache)
        stop_counting(request.scope)
        return caller
    throttled = context.refusals.throttled_before_lookup(source_address(request), key)
    if key and not throttled:
        async with context.refusals.lookup_lane(key):
            # Asked again once the lane is ours: the refusals queued ahead in a burst may
            # have used up the source's tokens meanwhile, and then no lookup is owed.
            throttled = context.refusals.throttled_before_lookup(source_address(request), key)
            if not throttled:
                caller = await _caller_holding(context, key)
    if caller is None:
        reason = THROTTLED_KEY if throttled else "missing or invalid API key"
        await refuse_anonymous(context, request, reason, key=key)
        raise Unauthorized()
    context.refusals.authenticated(key)
    stop_counting(request.scope)
    return caller


async def _caller_holding(context: AppContext, key: str) -> AuthenticatedCaller | None:
    # A short session of its own: holding one across the request while the handler opens
    # another would let a burst of requests exhaust the pool and wait on itself. One SELECT
    # needs no transaction around it: autocommit spares BEGIN and ROLLBACK, and it still
    # reads the latest committed row. The caller found is kept until the caller table changes
    # (a revocation reaches every replica's memory as it commits).
    read_under = context.callers.generation()
    async with context.sessions() as session:
        await read_alone(session)
        caller = await authenticate_caller(session, key)
    if caller is not None:
        context.callers.put(hash_caller_key(key), caller, read_under)
    return caller


def require_scope(scope: str) -> Callable[..., Awaitable[AuthenticatedCaller]]:
    """A dependency: an authenticated caller holding ``scope``, allowed the path's user."""

    async def dependency(
        request: Request,
        context: ContextDep,
        caller: Annotated[AuthenticatedCaller, Depends(authenticated_caller)],
    ) -> AuthenticatedCaller:
        actor = caller_actor(caller.id, caller.name)
        if not scope_allows(caller.scopes, scope):
            await refuse(context, request, actor, f"missing scope {scope!r}")
            raise Forbidden(f"This key lacks the {scope!r} scope.")
        user_id = request.path_params.get("user_id")
        if user_id is not None and not user_allowed(caller.user_patterns, user_id):
            await refuse(context, request, actor, "user outside the key's patterns", user_id)
            raise Forbidden("This key may not act for that user.")
        return caller

    return dependency


ProvisionCaller = Annotated[AuthenticatedCaller, Depends(require_scope("provision"))]
ReadCaller = Annotated[AuthenticatedCaller, Depends(require_scope("read"))]
AuditCaller = Annotated[AuthenticatedCaller, Depends(require_scope("audit"))]
AdminCaller = Annotated[AuthenticatedCaller, Depends(require_scope("admin"))]


async def ensure_user_allowed(
    context: AppContext, request: Request, caller: AuthenticatedCaller, user_id: str
) -> None:
    """Object-level check for routes that find the user through an object, not the path."""
    if not user_allowed(caller.user_patterns, user_id):
        actor = caller_actor(caller.id, caller.name)
        await refuse(context, request, actor, "user outside the key's patterns", user_id)
        raise Forbidden("This key may not act for that user.")
