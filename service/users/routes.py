"""Caller endpoints for users, their grants and their devices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from service.audit.events import ORIGIN_API, caller_actor
from service.users.offboarding import list_user_devices, offboard_user, remove_user_device
from service.users.schemas import DevicePage, OffboardOut, UserOut, UserUpdate
from service.users.store import put_user, user_with_grants
from service.web.deps import AdminCaller, ContextDep, ReadCaller, SessionDep
from service.web.fields import NodeId, UserId
from service.web.openapi import UPSTREAM_FAILURES, problem_responses

router = APIRouter(prefix="/v1/users", tags=["users, grants and devices"])


@router.put(
    "/{user_id}",
    response_model=UserOut,
    summary="Create or update a user",
    responses=problem_responses("validation_failed", "conflict"),
)
async def update_user(
    user_id: UserId, body: UserUpdate, session: SessionDep, caller: AdminCaller
) -> UserOut:
    """Set the Tailscale login a person must approve as (and a display name). Needs `admin`."""
    actor = caller_actor(caller.id, caller.name)
    await put_user(session, actor, user_id, body, origin=ORIGIN_API)
    return await user_with_grants(session, user_id)


@router.get(
    "/{user_id}",
    response_model=UserOut,
    summary="A user and their grants' metadata",
    responses=problem_responses("not_found", "validation_failed"),
)
async def get_user(user_id: UserId, session: SessionDep, caller: ReadCaller) -> UserOut:
    """The person and their consents' metadata; tokens never leave tsprov."""
    return await user_with_grants(session, user_id)


@router.delete(
    "/{user_id}/grants",
    response_model=OffboardOut,
    summary="Offboard: revoke every grant, cancel open requests, optionally delete devices",
    responses=problem_responses("validation_failed", *UPSTREAM_FAILURES),
)
async def offboard(
    user_id: UserId,
    context: ContextDep,
    caller: AdminCaller,
    delete_devices: Annotated[
        bool, Query(description="Also delete their provisioned devices at Tailscale.")
    ] = False,
) -> OffboardOut:
    """Revoke every consent (tokens wiped) and cancel open requests first, then delete the
    devices if asked. Needs `admin`; safe to repeat."""
    actor = caller_actor(caller.id, caller.name)
    return await offboard_user(context, actor, user_id, delete_devices=delete_devices)


@router.get(
    "/{user_id}/devices",
    response_model=DevicePage,
    summary="Devices provisioned for a user",
    responses=problem_responses("validation_failed", *UPSTREAM_FAILURES),
)
async def list_devices(user_id: UserId, context: ContextDep, caller: ReadCaller) -> DevicePage:
    """Each device that joined with a key tsprov handed out, with Tailscale's live view of it
    when an observer credential is set."""
    return await list_user_devices(context, user_id)


@router.delete(
    "/{user_id}/devices/{node_id}",
    status_code=204,
    summary="Delete a provisioned device at Tailscale",
    responses=problem_responses(
        "not_found",
        "validation_failed",
        "service_unavailable",
        *UPSTREAM_FAILURES,
    ),
)
async def remove_device(
    user_id: UserId, node_id: NodeId, context: ContextDep, caller: AdminCaller
) -> Response:
    """Remove the device from the tailnet. Needs `admin`."""
    await remove_user_device(context, caller_actor(caller.id, caller.name), user_id, node_id)
    return Response(status_code=204)
