"""The POST routes of /console: offboard a user, cancel a request, revoke a caller.

Each goes through the console's action step (CSRF token, then a confirmation page), calls
the domain function the API and CLI use, and is audited with the operator's tailnet login
as the actor and ``ADMIN_CONSOLE`` as the origin.
"""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from service.audit.events import ORIGIN_CONSOLE
from service.callers.store import CallerError, revoke_caller
from service.console.actions import ActionDep, Confirmation, confirmation_page, person_actor
from service.console.errors import ConsolePageError
from service.console.operators.access import OperatorDep
from service.console.pages import message_page
from service.db import transaction
from service.provisioning.cancel import cancel_request
from service.users.offboarding import offboard_user
from service.web.deps import ContextDep
from service.web.fields import UserId

router: APIRouter = APIRouter(prefix="/console", include_in_schema=False)
YES = "yes"


@router.post("/users/{user_id}/offboard")
async def offboard(
    request: Request,
    operator: OperatorDep,
    action: ActionDep,
    context: ContextDep,
    user_id: UserId,
    delete_devices: Annotated[str, Form(max_length=8)] = "",
) -> HTMLResponse:
    back = f"/console/users/{quote(user_id, safe='@')}"
    if not action.confirmed:
        also = " and delete the devices tsprov provisioned for them" if delete_devices else ""
        return confirmation_page(
            request,
            Confirmation(
                f"Offboard {user_id}?",
                f"Revoke every grant of {user_id} (at Tailscale too where it allows), wipe "
                f"their secrets and cancel their open requests{also}.",
                "Offboard",
                facts=[("User", user_id), ("Delete devices", "yes" if delete_devices else "no")],
                back=(back, "No, back to the user"),
                fields={"delete_devices": YES} if delete_devices else {},
            ),
        )
    done = await offboard_user(
        context,
        person_actor(operator),
        user_id,
        delete_devices=delete_devices == YES,
        origin=ORIGIN_CONSOLE,
    )
    return message_page(
        request,
        200,
        f"{user_id} offboarded",
        facts=[
            ("Grants revoked", str(done.grants_revoked)),
            ("Requests cancelled", str(done.requests_cancelled)),
            ("Devices deleted", ", ".join(done.devices_deleted) or "none"),
            ("Devices not deleted", ", ".join(done.devices_not_deleted) or "none"),
        ],
        back=(back, "Back to the user"),
    )


@router.post("/requests/{request_id}/cancel")
async def cancel(
    request: Request,
    operator: OperatorDep,
    action: ActionDep,
    context: ContextDep,
    request_id: uuid.UUID,
) -> HTMLResponse:
    back = f"/console/requests/{request_id}"
    if not action.confirmed:
        return confirmation_page(
            request,
            Confirmation(
                "Cancel this request?",
                "The request ends cancelled; a one-time key it holds is wiped, and its caller "
                "sees the cancellation.",
                "Cancel the request",
                facts=[("Request", str(request_id))],
                back=(back, "No, back to the request"),
            ),
        )
    await cancel_request(
        context.sessions, person_actor(operator), request_id, origin=ORIGIN_CONSOLE
    )
    return message_page(
        request, 200, "Request cancelled", str(request_id), back=(back, "Back to its timeline")
    )


@router.post("/callers/{name}/revoke")
async def revoke(
    request: Request,
    operator: OperatorDep,
    action: ActionDep,
    context: ContextDep,
    name: str,
) -> HTMLResponse:
    if not action.confirmed:
        return confirmation_page(
            request,
            Confirmation(
                f"Revoke the caller {name}?",
                "Its API key stops working at once, on every replica; it cannot be restored.",
                "Revoke",
                facts=[("Caller", name)],
                back=("/console/callers", "No, back to the callers"),
            ),
        )
    try:
        async with transaction(context.sessions) as session:
            await revoke_caller(session, name, person_actor(operator))
    except CallerError as exc:
        raise ConsolePageError(404, "No such caller", str(exc)) from exc
    context.callers.forget()  # here at once; other replicas as the change's notice reaches them
    return message_page(
        request, 200, f"{name} revoked", back=("/console/callers", "Back to the callers")
    )
