"""The audit trail for operators: query, NDJSON export, chain verification, checkpoints."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import struct
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from service.audit import store
from service.audit.chain import verify_chain
from service.audit.events import caller_actor
from service.audit.query import LOG_VERSION, AuditFilter, build_filter, open_export, query_audit
from service.audit.safe_text import escape_invisible_json
from service.audit.schemas import (
    EXAMPLE_EVENT,
    AuditLogPage,
    ChainReportOut,
    CheckpointPage,
    SignedCheckpointOut,
)
from service.audit.sealer import checkpoint_json
from service.callers.store import AuthenticatedCaller, user_allowed
from service.state import AppContext
from service.web.deps import AdminCaller, AuditCaller, ContextDep, SessionDep, refuse
from service.web.errors import Forbidden, ValidationFailed
from service.web.fields import USER_ID_PATTERN, SearchTerm
from service.web.openapi import problem_responses

router = APIRouter(prefix="/v1/audit", tags=["audit"])
log = logging.getLogger("tsprov.audit")

NDJSON = "application/x-ndjson"
_TIME = {"format": "date-time"}
Start = Annotated[
    str,
    Query(
        description="RFC 3339, inclusive",
        examples=["2026-11-28T00:00:00Z"],
        json_schema_extra=_TIME,
    ),
]
End = Annotated[
    str,
    Query(
        description="RFC 3339, exclusive",
        examples=["2026-11-29T00:00:00Z"],
        json_schema_extra=_TIME,
    ),
]
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
UserIdFilter = Annotated[
    str | None,
    Query(
        pattern=USER_ID_PATTERN,
        description="Only events about this user (required for a key limited to some users)",
        examples=["alice@example.com"],
    ),
]


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
    context: ContextDep, request: Request, caller: AuthenticatedCaller, window: AuditFilter
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
    limit: Annotated[int, Query(ge=1, le=500, description="Events per page")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=64, description="The previous page's `next_cursor`")
    ] = None,
) -> AuditLogPage:
    """Every change tsprov made and every refused attempt, shaped as Tailscale's
    configuration log, with a hash chain to show nothing was edited."""
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

After the events, when the chain has a signed checkpoint, the last line publishes the
newest one, for the SIEM to keep outside tsprov's database:

    {{"checkpoint": {{"seq": 1207, "count": 1204, "hash": "…", "time": "…", "key_id": "…",
    "signature": "…"}}}}
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
        _ndjson(events, context),
        media_type=NDJSON,
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": 'attachment; filename="tsprov-audit.ndjson"',
        },
    )


async def _ndjson(
    events: AsyncIterator[dict[str, Any]], context: AppContext
) -> AsyncIterator[bytes]:
    """Events as NDJSON lines, then the latest signed checkpoint (or an error record)."""
    exported = 0
    try:
        async for event in events:
            yield _line(event)
            exported += 1
        async with context.sessions() as session:
            latest = await store.signed_checkpoints(session, limit=1)
        if latest:
            yield _line({"checkpoint": checkpoint_json(latest[0])})
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
async def verify_audit_events(
    session: SessionDep, context: ContextDep, caller: AdminCaller
) -> ChainReportOut:
    """Walk the sealed chain and check every checkpoint's signature. Needs `admin`."""
    report = await verify_chain(session, signer=context.audit_signer)
    if not report.ok:
        context.metrics.audit_verify_failures.inc()
    return ChainReportOut(**report.as_json())


_CHECKPOINT_CURSOR = struct.Struct(">q")


def _decode_checkpoint_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        (position,) = _CHECKPOINT_CURSOR.unpack(raw)
    except (binascii.Error, ValueError, struct.error) as exc:
        raise ValidationFailed("The cursor is not valid.") from exc
    return int(position)


@router.get(
    "/checkpoints",
    response_model=CheckpointPage,
    summary="The chain's signed checkpoints, newest first",
    responses=problem_responses("validation_failed"),
)
async def list_audit_checkpoints(
    session: SessionDep,
    caller: AuditCaller,
    limit: Annotated[int, Query(ge=1, le=500, description="Checkpoints per page")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=16, description="`next_cursor` of the previous page")
    ] = None,
) -> CheckpointPage:
    """Each checkpoint signs the chain's head (Ed25519): compare one kept elsewhere with
    `tsprov audit verify --expect SEQ:HASH` to prove nothing at or before it was removed."""
    before = _decode_checkpoint_cursor(cursor) if cursor else None
    rows = await store.signed_checkpoints(session, before_position=before, limit=limit + 1)
    next_cursor = None
    if len(rows) > limit:
        packed = _CHECKPOINT_CURSOR.pack(rows[limit - 1].position)
        next_cursor = base64.urlsafe_b64encode(packed).rstrip(b"=").decode()
    items = [SignedCheckpointOut.model_validate(checkpoint_json(row)) for row in rows[:limit]]
    return CheckpointPage(items=items, next_cursor=next_cursor)
