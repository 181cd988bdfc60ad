"""The browser side: the consent link, Tailscale's callback and the result page."""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from service.audit.events import ORIGIN_BROWSER
from service.consent.callback import finish_consent, record_denial
from service.consent.confirmation import confirmation_page, refuse_other_tailnet_login
from service.consent.flow import (
    FLOW_LIFETIME,
    confirmable_flow,
    consume_flow,
    find_request_for_consent,
    start_flow,
)
from service.consent.result import result_page
from service.console.identity import signed_in_person
from service.db import transaction
from service.provisioning.create import return_to_allowed
from service.settings import Settings
from service.state import AppContext
from service.users.store import find_user
from service.web.deps import ContextDep, KeyRingDep, SessionDep, refuse_anonymous
from service.web.errors import BrowserError
from service.web.openapi import page_responses
from service.web.pages import BROWSER_HEADERS, render_page

router = APIRouter(tags=["consent (browser)"])


# OAuth response parameters are printable ASCII (RFC 6749 appendix A); anything else is
# refused before it can reach a query or the audit trail.
def oauth_parameter(description: str) -> Any:
    """A parameter of Tailscale's redirect: printable ASCII, bounded."""
    return Query(max_length=2048, pattern=r"^[\x20-\x7e]*$", description=description)


Code = Annotated[str | None, oauth_parameter("The authorization code to exchange")]
State = Annotated[str | None, oauth_parameter("The one-time state this flow was started with")]
Error = Annotated[str | None, oauth_parameter("Why no code came (`access_denied`: declined)")]
Issuer = Annotated[str | None, oauth_parameter("Who issued the answer (RFC 9207)")]


def flow_cookie_name(settings: Settings) -> str:
    # The __Host- prefix pins the cookie to this origin, https and path "/".
    return "__Host-tsprov_flow" if settings.secure_cookies else "tsprov_flow"


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=BROWSER_HEADERS)


class ConsentConfirmation(BaseModel):
    """What the confirmation page's button sends."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"request": "zDcdRtcn_hCNy-jbbD_OqiKfelzDgrh7HTiQSFmXOD4", "csrf_token": "…"}
            ]
        },
    )

    request: str = Field(min_length=1, max_length=128, description="The consent link's token")
    csrf_token: str = Field(
        min_length=1, max_length=128, description="The flow's token, from the page only"
    )


_LINK_PAGES: dict[int | str, str] = {
    400: "A malformed link",
    404: "An unknown link",
    410: "A link that expired or was already used",
    "5XX": "The database or the encryption keys are unavailable; try again later",
}


@router.get(
    "/authorize",
    summary="Open a consent link: a page naming who asks, for whom and until when",
    description="Never redirects to Tailscale by itself: the page's button (a POST to "
    "`/authorize` with the flow's CSRF token) continues.",
    response_class=HTMLResponse,
    responses={
        200: {"description": "The confirmation page, with the flow cookie set"},
        **page_responses(
            {
                **_LINK_PAGES,
                403: "Signed in to the tailnet (through tailscale serve) as another login "
                "than the request expects: refused before Tailscale",
            }
        ),
    },
)
async def authorize(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    key_ring: KeyRingDep,
    token: Annotated[
        str,
        Query(
            alias="request",
            min_length=1,
            max_length=128,
            description="The one-time token of a consent link (the `consent_url` a caller got)",
        ),
    ],
) -> HTMLResponse:
    """The link a caller sends the person: a page naming who asks, for whom and until when."""
    settings = context.settings
    cookie = flow_cookie_name(settings)
    provisioning_request = await find_request_for_consent(session, token)
    user = await find_user(session, provisioning_request.user_id)
    expected = settings.expected_login(
        provisioning_request.user_id, user.tailscale_login if user else None
    )
    person = signed_in_person(request)
    if person is not None:
        await refuse_other_tailnet_login(
            context.sessions, provisioning_request, expected, person.login
        )
    flow = await start_flow(session, key_ring, provisioning_request, request.cookies.get(cookie))
    login = person.login if person else None
    page = confirmation_page(settings, provisioning_request, expected, token, flow.state, login)
    page.set_cookie(
        cookie,
        flow.browser_id,
        max_age=int(FLOW_LIFETIME.total_seconds()),
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )
    return page


@router.post(
    "/authorize",
    summary="Continue a consent from its confirmation page to Tailscale's consent screen",
    response_class=RedirectResponse,
    response_model=None,
    status_code=303,
    responses={
        303: {"description": "To Tailscale's consent screen"},
        **page_responses(
            {**_LINK_PAGES, 403: "No flow of this browser matches the form's token (a forged POST)"}
        ),
    },
)
async def continue_to_tailscale(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    key_ring: KeyRingDep,
    form: Annotated[ConsentConfirmation, Form()],
) -> RedirectResponse:
    """The confirmation page's button: goes on only with the page's token and its cookie."""
    settings = context.settings
    token, csrf_token = form.request, form.csrf_token
    provisioning_request = await find_request_for_consent(session, token)
    browser_id = request.cookies.get(flow_cookie_name(settings))
    flow = await confirmable_flow(session, key_ring, csrf_token, browser_id)
    if flow is None or flow[0] != provisioning_request.id:
        raise BrowserError(
            403,
            "Confirmation not valid",
            "This confirmation did not come from the page tsprov showed in this browser. "
            "Open the consent link again.",
        )
    return _redirect(
        context.tailscale.authorize_url(
            redirect_uri=settings.redirect_uri,
            scope=settings.oauth_scope,
            state=csrf_token,
            code_challenge=flow[1],
        )
    )


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
    code: Code = None,
    state: State = None,
    error: Error = None,
    iss: Issuer = None,
) -> HTMLResponse | RedirectResponse:
    """Only Tailscale's consent screen sends browsers here, with `code` and `state` (or
    `error`); the flow cookie must match the browser that opened the link."""
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
                "Nothing was shared and no device was made.",
                "Declined by mistake? Open the consent link again and approve. Did not expect "
                "this request? Tell whoever sent you the link.",
                tone="plain",  # not a failure, and not a success either
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


@router.get(
    "/done",
    summary="The page people land on after approving",
    response_class=HTMLResponse,
    responses=page_responses(
        {
            200: "The approved request's user, device and next step; or, for a browser that "
            "approved nothing in the last hour, a neutral page"
        }
    ),
)
async def done(request: Request, context: ContextDep, session: SessionDep) -> HTMLResponse:
    """Reads the flow cookie the consent link set: only the browser that approved sees it."""
    return await result_page(session, request.cookies.get(flow_cookie_name(context.settings)))
