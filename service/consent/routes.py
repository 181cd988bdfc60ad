"""The browser side: the consent link, Tailscale's callback and the result page."""

from __future__ import annotations

from typing import Annotated, NoReturn

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from service.audit.events import ORIGIN_BROWSER
from service.consent.callback import finish_consent, record_denial
from service.consent.flow import FLOW_LIFETIME, consume_flow, find_request_for_consent, start_flow
from service.db import transaction
from service.provisioning.create import return_to_allowed
from service.settings import Settings
from service.state import AppContext
from service.web.deps import ContextDep, KeyRingDep, SessionDep, refuse_anonymous
from service.web.errors import BrowserError
from service.web.openapi import page_responses
from service.web.pages import BROWSER_HEADERS, render_page

router = APIRouter(tags=["consent (browser)"])
# OAuth response parameters are printable ASCII (RFC 6749 appendix A); anything else is
# refused before it can reach a query or the audit trail.
QueryText = Annotated[str | None, Query(max_length=2048, pattern=r"^[\x20-\x7e]*$")]


def flow_cookie_name(settings: Settings) -> str:
    # The __Host- prefix pins the cookie to this origin, https and path "/".
    return "__Host-tsprov_flow" if settings.secure_cookies else "tsprov_flow"


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=BROWSER_HEADERS)


@router.get(
    "/authorize",
    summary="Open a consent link: starts a flow and redirects to Tailscale's consent screen",
    response_class=RedirectResponse,
    response_model=None,
    status_code=303,
    responses={
        303: {"description": "To Tailscale's consent screen, with the flow cookie set"},
        **page_responses(
            {
                400: "A malformed link",
                404: "An unknown link",
                410: "A link that expired or was already used",
                "5XX": "The database or the encryption keys are unavailable; try again later",
            }
        ),
    },
)
async def authorize(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    key_ring: KeyRingDep,
    token: Annotated[str, Query(alias="request", min_length=1, max_length=128)],
) -> RedirectResponse:
    settings = context.settings
    cookie = flow_cookie_name(settings)
    provisioning_request = await find_request_for_consent(session, token)
    flow = await start_flow(session, key_ring, provisioning_request, request.cookies.get(cookie))
    response = _redirect(
        context.tailscale.authorize_url(
            redirect_uri=settings.redirect_uri,
            scope=settings.oauth_scope,
            state=flow.state,
            code_challenge=flow.code_challenge,
        )
    )
    response.set_cookie(
        cookie,
        flow.browser_id,
        max_age=int(FLOW_LIFETIME.total_seconds()),
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )
    return response


@router.get(
    "/callback",
    summary="Tailscale's redirect back after consent (never call it yourself)",
    response_class=RedirectResponse,
    response_model=None,
    status_code=303,
    responses={
        303: {"description": "Consent recorded: to `/done` or the request's `return_to`"},
        **page_responses(
            {
                200: "Consent declined: nothing was shared, the link may be opened again",
                400: "Bad, replayed, expired or foreign state, a wrong `iss`, or no `code`",
                403: "Approved with another Tailscale account than the user's "
                "(`identity_mismatch`); nothing was stored",
                409: "The request was cancelled or completed meanwhile",
                502: "Tailscale reported an error or refused the code exchange",
                "5XX": "The database or the encryption keys are unavailable; try again later",
            }
        ),
    },
)
async def callback(
    request: Request,
    context: ContextDep,
    key_ring: KeyRingDep,
    code: QueryText = None,
    state: QueryText = None,
    error: QueryText = None,
    iss: QueryText = None,
) -> HTMLResponse | RedirectResponse:
    browser_id = request.cookies.get(flow_cookie_name(context.settings))
    async with transaction(context.sessions) as session:
        consumed = await consume_flow(session, key_ring, state or "", browser_id)
    if consumed is None:
        await _refuse(context, request, "state not issued to this browser, expired or already used")
    if iss is not None and iss != context.settings.issuer:
        await _refuse(context, request, "iss does not match the configured issuer")
    if error is not None:
        await record_denial(context, consumed, error[:64])
        if error == "access_denied":
            return render_page(
                200,
                "Consent declined",
                "Nothing was shared. You may close this "
                "window, or open the consent link again to approve.",
            )
        raise BrowserError(502, "Sign-in not completed", "Tailscale reported an error.")
    if not code:
        raise BrowserError(400, "Invalid callback", "The sign-in response was incomplete.")
    finished = await finish_consent(context, consumed, code)
    if return_to_allowed(context.settings, finished.return_to):
        return _redirect(f"{context.settings.public_url}{finished.return_to}")
    return _redirect("/done")


async def _refuse(context: AppContext, request: Request, reason: str) -> NoReturn:
    await refuse_anonymous(context, request, reason, origin=ORIGIN_BROWSER)
    raise BrowserError(
        400,
        "Sign-in link not valid",
        "This sign-in was started in another browser, has expired or was already used. "
        "Open the consent link again.",
    )


@router.get("/done", summary="The page people land on after approving", response_class=HTMLResponse)
async def done() -> HTMLResponse:
    return render_page(
        200,
        "All set",
        "Your approval was recorded. You can close this window and return to "
        "the tool that sent you here.",
    )
