"""Caller endpoints for users, their grants and their devices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from service.audit import ORIGIN_API, caller_actor
from service.deps import AdminCaller, ContextDep, ReadCaller, SessionDep
from service.errors import NotFound, ServiceUnavailable, problem_responses
from service.models import ConsentGrant
from service.offboarding import delete_device, offboard_user, provisioned_devices
from service.schemas import (
    DeviceOut,
    DevicePage,
    GrantOut,
    NodeId,
    OffboardOut,
    UserId,
    UserOut,
    UserUpdate,
)
from service.users import find_user, put_user

router = APIRouter(prefix="/v1/users", tags=["users, grants and devices"])


@router.put(
    "/{user_id}",
    response_model=UserOut,
    summary="Create or update a user",
    responses=problem_responses("unauthorized", "forbidden", "validation_failed"),
)
async def update_user(
    user_id: UserId, body: UserUpdate, session: SessionDep, caller: AdminCaller
) -> UserOut:
    actor = caller_actor(caller.id, caller.name)
    await put_user(session, actor, user_id, body, origin=ORIGIN_API)
    return await _user_out(session, user_id)


@router.get(
    "/{user_id}",
    response_model=UserOut,
    summary="A user and their grants' metadata",
    responses=problem_responses("unauthorized", "forbidden", "not_found"),
)
async def get_user(user_id: UserId, session: SessionDep, caller: ReadCaller) -> UserOut:
    return await _user_out(session, user_id)


async def _user_out(session: SessionDep, user_id: str) -> UserOut:
    user = await find_user(session, user_id)
    if user is None:
        raise NotFound("No such user.")
    grants = await session.scalars(
        select(ConsentGrant)
        .where(ConsentGrant.user_id == user_id)
        .order_by(ConsentGrant.created_at.desc())
    )
    return UserOut(
        user_id=user.user_id,
        tailscale_login=user.tailscale_login,
        display_name=user.display_name,
        created_at=user.created_at,
        updated_at=user.updated_at,
        grants=[GrantOut.model_validate(grant, from_attributes=True) for grant in grants],
    )


@router.delete(
    "/{user_id}/grants",
    response_model=OffboardOut,
    summary="Offboard: revoke every grant, cancel open requests, optionally delete devices",
    responses=problem_responses("unauthorized", "forbidden", "upstream_unavailable"),
)
async def offboard(
    user_id: UserId,
    context: ContextDep,
    caller: AdminCaller,
    delete_devices: Annotated[bool, Query()] = False,
) -> OffboardOut:
    actor = caller_actor(caller.id, caller.name)
    return await offboard_user(context, actor, user_id, delete_devices=delete_devices)


@router.get(
    "/{user_id}/devices",
    response_model=DevicePage,
    summary="Devices provisioned for a user",
    responses=problem_responses("unauthorized", "forbidden", "upstream_unavailable"),
)
async def list_devices(
    user_id: UserId, context: ContextDep, session: SessionDep, caller: ReadCaller
) -> DevicePage:
    rows = await provisioned_devices(session, user_id)
    live = {}
    if rows and context.tailscale.has_observer:
        live = {device.node_id: device for device in await context.tailscale.list_devices()}
    return DevicePage(
        items=[
            DeviceOut(
                node_id=row.device_node_id or "",
                name=row.device_name,
                hostname=row.hostname,
                user=row.device_user,
                joined_at=row.device_joined_at,
                request_id=row.id,
                live=_live(live.get(row.device_node_id or "")),
            )
            for row in rows
        ]
    )


def _live(device: object | None) -> dict[str, object] | None:
    if device is None:
        return None
    return dict(vars(device))


@router.delete(
    "/{user_id}/devices/{node_id}",
    status_code=204,
    summary="Delete a provisioned device at Tailscale",
    responses=problem_responses(
        "unauthorized", "forbidden", "not_found", "service_unavailable", "upstream_unavailable"
    ),
)
async def remove_device(
    user_id: UserId, node_id: NodeId, context: ContextDep, session: SessionDep, caller: AdminCaller
) -> Response:
    rows = {row.device_node_id: row for row in await provisioned_devices(session, user_id)}
    if node_id not in rows:
        raise NotFound("tsprov provisioned no such device for this user.")
    if not context.tailscale.has_observer:
        raise ServiceUnavailable("Deleting devices needs an observer credential.")
    await delete_device(
        context, caller_actor(caller.id, caller.name), user_id, node_id, rows[node_id].device_name
    )
    return Response(status_code=204)
