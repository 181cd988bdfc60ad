"""Caller endpoints for provisioning requests."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from service.audit.events import caller_actor
from service.callers.idempotency import Answer, fingerprint, run_idempotent
from service.db import transaction
from service.provisioning.cancel import cancel_request
from service.provisioning.claim import claim_provisioning_request
from service.provisioning.create import create_request_under_grant
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
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Any printable string: a retry with the same key and body gets the first "
        "answer again instead of acting twice.",
        examples=["create-devbox-42-1"],
    ),
]
RequestId = Annotated[
    uuid.UUID,
    Path(
        description="The provisioning request's id.",
        examples=["3c9a4b1e-8f2d-4e6a-b5c7-1d0e9f8a7b6c"],
    ),
]
CLAIM_REPLAY_WINDOW = timedelta(minutes=5)
NO_STORE = {"Cache-Control": "no-store"}
# What a caller can do next with a request it just made (OpenAPI links, for clients and
# for stateful testing): read it, claim it, cancel it.
_BY_ID = {"parameters": {"request_id": "$response.body#/id"}}
REQUEST_LINKS = {
    "GetRequest": {"operationId": "getProvisioningRequest", **_BY_ID},
    "ClaimRequest": {"operationId": "claimProvisioningRequest", **_BY_ID},
    "CancelRequest": {"operationId": "cancelProvisioningRequest", **_BY_ID},
}


@router.post(
    "/users/{user_id}/provisioning-requests",
    status_code=201,
    response_model=ProvisioningRequestOut,
    summary="Ask for a device for a user",
    operation_id="createProvisioningRequest",
    responses={
        201: {"description": "The request", "links": REQUEST_LINKS},
        **problem_responses(
            "validation_failed",
            "conflict",
            "tailscale_login_required",
            "idempotency_conflict",
            "idempotency_in_flight",
            "encryption_unavailable",
            "decryption_failed",
        ),
    },
)
async def create_request(
    user_id: UserId,
    body: ProvisioningRequestCreate,
    context: ContextDep,
    key_ring: KeyRingDep,
    caller: ProvisionCaller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Store the request and answer with its `consent_url` to send the user (201,
    `awaiting_consent`), or `ready` at once when a reusable grant of the user's is live."""
    actor = caller_actor(caller.id, caller.name)

    async def create() -> Answer:
        async with transaction(context.sessions) as session:
            request, grant = await create_request_under_grant(
                session, context.settings, key_ring, actor, user_id, body
            )
            out = request_out(context.settings, key_ring, request, grant)
        return Answer(201, out.model_dump(mode="json"))

    def request_hash() -> bytes:
        return fingerprint(f"create:{user_id}", body.model_dump(mode="json"))

    answer = await run_idempotent(
        context, key_ring, caller.id, idempotency_key, request_hash, create
    )
    return JSONResponse(answer.body, status_code=answer.status, headers=NO_STORE)


@router.get(
    "/provisioning-requests/{request_id}",
    response_model=ProvisioningRequestOut,
    summary="A provisioning request; `wait_seconds` long-polls for a status change",
    operation_id="getProvisioningRequest",
    responses=problem_responses(
        "not_found",
        "validation_failed",
        "too_many_waits",
        "encryption_unavailable",
        "decryption_failed",
    ),
)
async def get_request(
    request_id: RequestId,
    request: Request,
    context: ContextDep,
    key_ring: KeyRingDep,
    caller: ReadCaller,
    wait_seconds: Annotated[
        int,
        Query(
            ge=0,
            le=30,
            description="Long-poll: hold the answer until the status changes, up to this many "
            "seconds. A request that has ended answers at once.",
            examples=[10],
        ),
    ] = 0,
) -> ProvisioningRequestOut:
    """Where the request stands; `failure` says why one ended `failed`, `expired` or
    `cancelled`."""
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
    status: Annotated[
        RequestStatus | None, Query(description="Only requests in this status.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Requests per page.")] = 100,
    cursor: Annotated[
        str | None,
        Query(max_length=200, description="The previous page's `next_cursor`."),
    ] = None,
) -> ProvisioningRequestPage:
    """Newest first, a page at a time."""
    return await list_user_requests(context, key_ring, user_id, status, limit, cursor)


@router.post(
    "/provisioning-requests/{request_id}/claim",
    response_model=ClaimOut,
    summary="Collect the auth key, exactly once (Cache-Control: no-store)",
    operation_id="claimProvisioningRequest",
    responses=problem_responses(
        "not_found",
        "validation_failed",
        "not_ready",
        "already_claimed",
        "consent_required",
        "grant_revoked",
        "identity_mismatch",
        "identity_unverified",
        "idempotency_conflict",
        "idempotency_in_flight",
        *UPSTREAM_FAILURES,
        "upstream_outcome_unknown",
        "encryption_unavailable",
        "decryption_failed",
    ),
)
async def claim(
    request_id: RequestId,
    request: Request,
    context: ContextDep,
    key_ring: KeyRingDep,
    caller: ProvisionCaller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """The auth key and the `tailscale up` line that uses it, once the user approved. It is
    handed out once; send an `Idempotency-Key` so a lost answer can be asked for again."""
    if caller.user_patterns:
        # Checked before anything else; a key without patterns may act for every user, and
        # an unknown request is a 404 from the claim's own read.
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
        lambda: fingerprint(f"claim:{request_id}", None),
        hand_out,
        replay_window=CLAIM_REPLAY_WINDOW,
    )
    return JSONResponse(answer.body, status_code=answer.status, headers=NO_STORE)


@router.delete(
    "/provisioning-requests/{request_id}",
    status_code=204,
    summary="Cancel a request; any key it holds is wiped",
    operation_id="cancelProvisioningRequest",
    responses=problem_responses("not_found", "validation_failed", "conflict"),
)
async def cancel(
    request_id: RequestId, request: Request, context: ContextDep, caller: ProvisionCaller
) -> Response:
    """Only a request still `awaiting_consent` or `ready` can be cancelled."""
    owner = await request_owner(context.sessions, request_id)
    await ensure_user_allowed(context, request, caller, owner)
    await cancel_request(context.sessions, caller_actor(caller.id, caller.name), request_id)
    return Response(status_code=204)
