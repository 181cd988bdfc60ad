"""The audit trail for operators: query, NDJSON export, chain verification."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict

from service.audit.chain import verify_chain
from service.audit.events import caller_actor
from service.audit.query import LOG_VERSION, AuditFilter, build_filter, open_export, query_audit
from service.audit.safe_text import escape_invisible_json
from service.callers.store import user_allowed
from service.models import Caller
from service.web.deps import AdminCaller, AuditCaller, ContextDep, SessionDep, refuse
from service.web.errors import Forbidden
from service.web.fields import USER_ID_PATTERN, SearchTerm
from service.web.openapi import problem_responses

router = APIRouter(prefix="/v1/audit", tags=["audit"])
log = logging.getLogger("tsprov.audit")

NDJSON = "application/x-ndjson"
EXAMPLE_EVENT: dict[str, Any] = {
    "id": "0b7c2a52-3f43-4a4b-9d0e-6a1f8f0c7a11",
    "eventTime": "2026-11-28T20:15:03.120455Z",
    "type": "CONFIG",
    "deferredAt": "0001-01-01T00:00:00Z",
    "eventGroupID": "5d0f7a0e-2b1c-4a8e-9f61-0c4b8a3e9d27",
    "origin": "CONFIG_API",
    "actor": {
        "id": "7f1e9c1a-5d0b-4f0e-a3f4-2c9d8e7b6a50",
        "type": "OAUTH_CLIENT",
        "loginName": "devbox-service",
        "displayName": "devbox-service",
        "tags": [],
    },
    "target": {
        "id": "3c9a4b1e-8f2d-4e6a-b5c7-1d0e9f8a7b6c",
        "name": "alice@example.com",
        "type": "PROVISIONING_REQUEST",
        "isEphemeral": False,
        "property": "STATUS",
    },
    "action": "UPDATE",
    "old": "ready",
    "new": "claimed",
    "actionDetails": "",
    "error": "",
    "userId": "alice@example.com",
    "prevHash": "9f2c" + "0" * 60,
    "hash": "41ab" + "0" * 60,
}


class AuditLogPage(BaseModel):
    """Tailscale's ``/logging/configuration`` envelope plus ``next_cursor``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"version": "1.1", "tailnet": "example.com", "logs": [EXAMPLE_EVENT],
                 "next_cursor": None}
            ]
        }
    )  # fmt: skip

    version: str
    tailnet: str
    logs: list[dict[str, Any]]
    next_cursor: str | None


class ChainReportOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"ok": True, "checked": 1204, "first_bad_event": None, "reason": None},
                {"ok": False, "checked": 17, "first_bad_event": EXAMPLE_EVENT["id"],
                 "reason": "edited: its content no longer matches its hash"},
            ]
        }
    )  # fmt: skip

    ok: bool
    checked: int
    first_bad_event: str | None
    reason: str | None


Start = Annotated[str, Query(description="RFC 3339, inclusive", examples=["2026-11-28T00:00:00Z"])]
End = Annotated[str, Query(description="RFC 3339, exclusive", examples=["2026-11-29T00:00:00Z"])]
# Each term is matched against every row in the window: a bounded number of bounded terms.
MAX_FILTER_TERMS = 20
ActorFilter = Annotated[
    list[SearchTerm] | None,
    Query(description="Actor id or loginName; repeatable", max_length=MAX_FILTER_TERMS),
]
TargetFilter = Annotated[
    list[SearchTerm] | None,
    Query(description="Target id or name; repeatable", max_length=MAX_FILTER_TERMS),
]
EventFilter = Annotated[
    list[SearchTerm] | None,
    Query(
        description="TARGETTYPE.ACTION; repeatable",
        examples=["NODE.CREATE"],
        max_length=MAX_FILTER_TERMS,
    ),
]
UserIdFilter = Annotated[str | None, Query(pattern=USER_ID_PATTERN)]


async def audit_filter(
    start: Start,
    end: End,
    actor: ActorFilter = None,
    target: TargetFilter = None,
    event: EventFilter = None,
    user_id: UserIdFilter = None,
) -> AuditFilter:
    return build_filter(
        start, end, actors=actor or (), targets=target or (), events=event or (), user_id=user_id
    )


AuditFilterDep = Annotated[AuditFilter, Depends(audit_filter)]


async def _limit_to_callers_users(
    context: ContextDep, request: Request, caller: Caller, window: AuditFilter
) -> None:
    """A key limited to some users reads only their events, so it must name one of them."""
    if not caller.user_patterns:
        return
    user_id = window.user_id
    if user_id is None or not user_allowed(caller.user_patterns, user_id):
        actor = caller_actor(caller.id, caller.name)
        await refuse(context, request, actor, "audit read outside the key's patterns", user_id)
        raise Forbidden("This key is limited to some users: pass a user_id it may act for.")


@router.get(
    "",
    response_model=AuditLogPage,
    summary="Audit events in a time window, in time order (Tailscale's /logging/configuration)",
    responses=problem_responses("validation_failed"),
)
async def list_audit_events(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    caller: AuditCaller,
    window: AuditFilterDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> AuditLogPage:
    await _limit_to_callers_users(context, request, caller, window)
    page = await query_audit(session, window, limit=limit, cursor=cursor)
    return AuditLogPage(
        version=LOG_VERSION,
        tailnet=context.settings.tailnet,
        logs=page.logs,
        next_cursor=page.next_cursor,
    )


EXPORT_INCOMPLETE = "export_incomplete"
EXPORT_DESCRIPTION = f"""Every matching event as one JSON object per line, in time order, read a
thousand rows per short query. It takes the same filters as `GET /v1/audit`.

A failure before the first line is an ordinary problem+json answer. Once the 200 has gone
out, a failure can only end the body: its last line is then an error record instead of an
event, and the export is incomplete:

    {{"error": {{"code": "{EXPORT_INCOMPLETE}", "detail": "…", "exported": 1000}}}}

Ask again with `start` set to the last `eventTime` you received, skipping the ids you have.
"""


@router.get(
    "/export",
    summary="Every audit event in a window as NDJSON, streamed (for a SIEM)",
    description=EXPORT_DESCRIPTION,
    response_class=StreamingResponse,
    responses={
        200: {"content": {NDJSON: {"example": json.dumps(EXAMPLE_EVENT) + "\n"}}},
        **problem_responses("validation_failed"),
    },
)
async def export_audit_events(
    request: Request, context: ContextDep, caller: AuditCaller, window: AuditFilterDep
) -> StreamingResponse:
    await _limit_to_callers_users(context, request, caller, window)
    events = await open_export(context.sessions, window)
    return StreamingResponse(
        _ndjson(events),
        media_type=NDJSON,
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": 'attachment; filename="tsprov-audit.ndjson"',
        },
    )


async def _ndjson(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """Events as NDJSON lines, ended by an error record if reading breaks off midway."""
    exported = 0
    try:
        async for event in events:
            yield _line(event)
            exported += 1
    # The 200 is already sent, so the body is the only place left to say the export is cut
    # short; a SIEM that saw a clean end would take a partial window for the whole one.
    except Exception as exc:
        log.error("audit export stopped after %d events: %s", exported, type(exc).__name__)
        detail = "Reading the audit trail failed midway; the events above are not the whole window."
        yield _line({"error": {"code": EXPORT_INCOMPLETE, "detail": detail, "exported": exported}})


def _line(value: dict[str, Any]) -> bytes:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    # Rows written before stored text was escaped may still hold a raw separator or bidi mark.
    return escape_invisible_json(text).encode() + b"\n"


@router.get(
    "/verify",
    response_model=ChainReportOut,
    summary="Walk the hash chain and name the first event edited, removed or reordered",
    responses=problem_responses(),
)
async def verify_audit_events(session: SessionDep, caller: AdminCaller) -> ChainReportOut:
    report = await verify_chain(session)
    return ChainReportOut(**report.as_json())
