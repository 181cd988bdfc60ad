"""Caller endpoints for provisioning requests."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from service.audit.events import caller_actor
from service.callers.idempotency import Answer, fingerprint, run_idempotent
from service.db import transaction
from service.grants.store import load_grant
from service.provisioning.cancel import cancel_request
from service.provisioning.claim import claim_provisioning_request
from service.provisioning.create import create_provisioning_request
from service.provisioning.reading import (
    list_user_requests,
    read_request,
    request_out,
    request_owner,
    wait_for_change,
)
from service.provisioning.schemas import (
    ClaimOut,
    ProvisioningRequestCreate,
    ProvisioningRequestOut,
    ProvisioningRequestPage,
)
from service.provisioning.status import RequestStatus
from service.web.deps import (
    ContextDep,
    KeyRingDep,
    ProvisionCaller,
    ReadCaller,
    ensure_user_allowed,
)
from service.web.fields import UserId
from service.web.openapi import UPSTREAM_FAILURES, problem_responses

router = APIRouter(prefix="/v1", tags=["provisioning requests"])
# Printable ASCII only: the key is echoed nowhere, but it is hashed and logged about, and a
# control character has no business in it.
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"),
]
CLAIM_REPLAY_WINDOW = timedelta(minutes=5)
NO_STORE = {"Cache-Control": "no-store"}


@router.post(
    "/users/{user_id}/provisioning-requests",
    status_code=201,
    response_model=ProvisioningRequestOut,
    summary="Ask for a device for a user",
    responses=problem_responses(
        "validation_failed",
        "conflict",
        "idempotency_conflict",
        "idempotency_in_flight",
        "encryption_unavailable",
        "decryption_failed",
    ),
)
async def create_request(
    user_id: UserId,
    body: ProvisioningRequestCreate,
    context: ContextDep,
    key_ring: KeyRingDep,
    caller: ProvisionCaller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    actor = caller_actor(caller.id, caller.name)

    async def create() -> Answer:
        async with transaction(context.sessions) as session:
            request = await create_provisioning_request(
                session, context.settings, key_ring, actor, user_id, body
            )
            grant = await load_grant(session, request.grant_id)
            out = request_out(context.settings, key_ring, request, grant)
        return Answer(201, out.model_dump(mode="json"))

    request_hash = fingerprint(f"create:{user_id}", body.model_dump(mode="json"))
    answer = await run_idempotent(
        context, key_ring, caller.id, idempotency_key, request_hash, create
    )
    return JSONResponse(answer.body, status_code=answer.status, headers=NO_STORE)


@router.get(
    "/provisioning-requests/{request_id}",
    response_model=ProvisioningRequestOut,
    summary="A provisioning request; `wait_seconds` long-polls for a status change",
    responses=problem_responses(
        "not_found",
        "validation_failed",
        "too_many_waits",
        "encryption_unavailable",
        "decryption_failed",
    ),
)
async def get_request(
    request_id: uuid.UUID,
    request: Request,
    context: ContextDep,
    key_ring: KeyRingDep,
    caller: ReadCaller,
    wait_seconds: Annotated[int, Query(ge=0, le=30)] = 0,
) -> ProvisioningRequestOut:
    await ensure_user_allowed(
        context, request, caller, await request_owner(context.sessions, request_id)
    )
    if not wait_seconds:
        return await read_request(context, key_ring, request_id)
    with context.waits.slot(caller.id):
        return await wait_for_change(context, key_ring, request_id, wait_seconds)


@router.get(
    "/users/{user_id}/provisioning-requests",
    response_model=ProvisioningRequestPage,
    summary="A user's provisioning requests, newest first",
    responses=problem_responses("validation_failed", "encryption_unavailable", "decryption_failed"),
)
async def list_requests(
    user_id: UserId,
    context: ContextDep,
    key_ring: KeyRingDep,
    caller: ReadCaller,
    status: RequestStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ProvisioningRequestPage:
    return await list_user_requests(context, key_ring, user_id, status, limit, cursor)


@router.post(
    "/provisioning-requests/{request_id}/claim",
    response_model=ClaimOut,
    summary="Collect the auth key, exactly once (Cache-Control: no-store)",
    responses=problem_responses(
        "not_found",
        "validation_failed",
        "not_ready",
        "already_claimed",
        "consent_required",
        "grant_revoked",
        "idempotency_conflict",
        "idempotency_in_flight",
        *UPSTREAM_FAILURES,
        "upstream_outcome_unknown",
        "encryption_unavailable",
        "decryption_failed",
    ),
)
async def claim(
    request_id: uuid.UUID,
    request: Request,
    context: ContextDep,
    key_ring: KeyRingDep,
    caller: ProvisionCaller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    await ensure_user_allowed(
        context, request, caller, await request_owner(context.sessions, request_id)
    )
    actor = caller_actor(caller.id, caller.name)

    async def hand_out() -> Answer:
        out = await claim_provisioning_request(context, actor, request_id)
        return Answer(200, out.model_dump(mode="json"))

    answer = await run_idempotent(
        context,
        key_ring,
        caller.id,
        idempotency_key,
        fingerprint(f"claim:{request_id}", None),
        hand_out,
        replay_window=CLAIM_REPLAY_WINDOW,
    )
    return JSONResponse(answer.body, status_code=answer.status, headers=NO_STORE)


@router.delete(
    "/provisioning-requests/{request_id}",
    status_code=204,
    summary="Cancel a request; any key it holds is wiped",
    responses=problem_responses("not_found", "validation_failed", "conflict"),
)
async def cancel(
    request_id: uuid.UUID, request: Request, context: ContextDep, caller: ProvisionCaller
) -> Response:
    owner = await request_owner(context.sessions, request_id)
    await ensure_user_allowed(context, request, caller, owner)
    await cancel_request(context.sessions, caller_actor(caller.id, caller.name), request_id)
    return Response(status_code=204)
