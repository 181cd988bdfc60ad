"""The GET routes of /console: each reads through one domain function and renders a page."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from service.audit import store as audit_store
from service.audit.query import query_audit
from service.audit.recent import verify_recent
from service.audit.sealer import checkpoint_json
from service.callers.listing import callers_with_last_use
from service.console.actions import ActionDep
from service.console.errors import ConsolePageError
from service.console.operators.access import OperatorDep
from service.console.operators.forms import audit_filter, form_moment, request_filter
from service.console.pages import render
from service.ops.health_report import gather_health
from service.provisioning.overview import request_timeline, requests_page
from service.provisioning.status import OPEN_STATUSES, RequestStatus
from service.provisioning.store import provisioned_devices
from service.users.directory import users_page
from service.users.store import user_with_grants
from service.web.deps import ContextDep, SessionDep
from service.web.fields import UserId

router: APIRouter = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 50
# The on-demand verify walks this many of the newest sealed events: about a second on a
# busy machine (benchmarks/README.md); `tsprov audit verify` walks the whole chain.
VERIFY_RECENT_EVENTS = 20_000
# What a form field may hold; longer is refused as an invalid link.
Field = Annotated[str, Query(max_length=400)]
Cursor = Annotated[str, Query(max_length=200)]


def _next_url(request: Request, cursor: str | None) -> str | None:
    """This page's address with the same filters, continuing after ``cursor``."""
    if cursor is None:
        return None
    return str(request.url.include_query_params(cursor=cursor).replace(scheme="", netloc=""))


@router.get("")
async def requests(
    request: Request,
    operator: OperatorDep,
    session: SessionDep,
    user: Field = "",
    caller: Field = "",
    status: Field = "",
    created_from: Annotated[str, Query(alias="from", max_length=40)] = "",
    created_until: Annotated[str, Query(alias="until", max_length=40)] = "",
    cursor: Cursor = "",
) -> HTMLResponse:
    """Requests by status, newest first, with filters for user, caller, status and time."""
    wanted = request_filter(user, caller, status, created_from, created_until)
    page = await requests_page(session, wanted, PAGE_SIZE, cursor or None)
    return render(
        request,
        "operators/requests.html",
        title="Provisioning requests",
        statuses=list(RequestStatus),
        wanted=wanted,
        times=(form_moment(wanted.created_from), form_moment(wanted.created_until)),
        page=page,
        next_url=_next_url(request, page.next_cursor),
    )


@router.get("/requests/{request_id}")
async def timeline(
    request: Request, operator: OperatorDep, session: SessionDep, request_id: uuid.UUID
) -> HTMLResponse:
    """One request's life: its audit events in order, each with Tailscale's when linked."""
    found = await request_timeline(session, request_id)
    return render(
        request,
        "operators/timeline.html",
        title=f"Request {found.request.id}",
        found=found,
        open_statuses=OPEN_STATUSES,
    )


@router.get("/users")
async def users(
    request: Request, operator: OperatorDep, session: SessionDep, cursor: Cursor = ""
) -> HTMLResponse:
    page = await users_page(session, cursor or None, PAGE_SIZE)
    return render(
        request,
        "operators/users.html",
        title="Users",
        page=page,
        next_url=_next_url(request, page.next_cursor),
    )


@router.get("/users/{user_id}")
async def user(
    request: Request, operator: OperatorDep, session: SessionDep, user_id: UserId
) -> HTMLResponse:
    """A user's expected login, grants (never a secret) and the devices made for them."""
    found = await user_with_grants(session, user_id)
    return render(
        request,
        "operators/user.html",
        title=f"User {found.user_id}",
        found=found,
        devices=await provisioned_devices(session, user_id),
    )


@router.get("/callers")
async def callers(request: Request, operator: OperatorDep, session: SessionDep) -> HTMLResponse:
    return render(
        request,
        "operators/callers.html",
        title="Callers",
        callers=await callers_with_last_use(session),
    )


@router.get("/audit")
async def audit(
    request: Request,
    operator: OperatorDep,
    session: SessionDep,
    start: Annotated[str, Query(max_length=40)] = "",
    end: Annotated[str, Query(max_length=40)] = "",
    actor: Field = "",
    target: Field = "",
    event: Field = "",
    user: Field = "",
    cursor: Cursor = "",
) -> HTMLResponse:
    """The API's search over the trail, and the latest signed checkpoint."""
    wanted = audit_filter(start, end, actor, target, event, user, now=datetime.now(UTC))
    page = await query_audit(session, wanted, limit=PAGE_SIZE, cursor=cursor or None)
    latest = await audit_store.signed_checkpoints(session, limit=1)
    return render(
        request,
        "operators/audit.html",
        title="Audit trail",
        wanted=wanted,
        times=(form_moment(wanted.start), form_moment(wanted.end)),
        fields={"actor": actor, "target": target, "event": event, "user": user},
        page=page,
        next_url=_next_url(request, page.next_cursor),
        checkpoint=checkpoint_json(latest[0]) if latest else None,
        verify_events=VERIFY_RECENT_EVENTS,
    )


@router.post("/audit/verify")
async def verify(
    request: Request,
    operator: OperatorDep,
    action: ActionDep,
    session: SessionDep,
    context: ContextDep,
) -> HTMLResponse:
    """Verify run now over the newest sealed events (bounded), as GET /v1/audit/verify
    does over all of them.

    A POST with the page's token, not a link: the person is named by Serve on every request,
    so any page an operator visits could otherwise fire walks in their name. One walk at a
    time per process, so repeated clicks cannot tie up the pool.
    """
    state = request.app.state
    if getattr(state, "console_verify_running", False):
        raise ConsolePageError(
            429,
            "A verify is already running",
            "Another walk of the audit chain is under way in this replica. Try again once "
            "it has finished; it takes about a second.",
        )
    state.console_verify_running = True
    try:
        report = await verify_recent(
            session, signer=context.audit_signer, last=VERIFY_RECENT_EVENTS
        )
    finally:
        state.console_verify_running = False
    if not report.ok:
        context.metrics.audit_verify_failures.inc()
    return render(
        request,
        "operators/verify.html",
        title="The audit chain holds" if report.ok else "The audit chain is broken",
        tone="ok" if report.ok else "bad",
        report=report,
        bound=VERIFY_RECENT_EVENTS,
    )


@router.get("/health")
async def health(request: Request, operator: OperatorDep, context: ContextDep) -> HTMLResponse:
    """Readiness, the background jobs' last runs, the sealer's lag, the upstream breaker and
    the observer's token, as /readyz, `tsprov status` and /metrics each see them."""
    report = await gather_health(context)
    return render(
        request,
        "operators/health.html",
        title="Healthy" if report.healthy else "Not healthy",
        tone="ok" if report.healthy else "bad",
        report=report,
    )
