"""`/a/oauth_authorize` on the login host: the consent screen and its redirects."""

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from sandbox.bearer import StateDep
from sandbox.grants.consent import issue_code, record_denial
from sandbox.models import OAuthApp, User
from sandbox.pages import consent_page, error_page
from sandbox.scopes import scopes_allow, split_scope
from sandbox.state import SandboxState

AUTHORIZE_PATH = "/a/oauth_authorize"
PARAMETER_NAMES = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)
_CODE_CHALLENGE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
router = APIRouter(tags=["oauth"])
Params = dict[str, str]


@dataclass(frozen=True)
class Choice:
    """What the person on the consent page decided, and as whom."""

    approve: bool
    user: User


def form_token(state: SandboxState, params: Params) -> str:
    """Sign the authorization parameters the page carries, so a posted form cannot alter them."""
    canonical = json.dumps(params, sort_keys=True).encode()
    return hmac.new(state.form_key, canonical, hashlib.sha256).hexdigest()


def _redirect(request: Request, state: SandboxState, uri: str, values: Params) -> Response:
    if state.switches.send_iss:
        values = {**values, "iss": str(request.base_url).rstrip("/")}
    separator = "&" if "?" in uri else "?"
    return RedirectResponse(f"{uri}{separator}{urlencode(values)}", status_code=302)


def _registered_app(state: SandboxState, params: Params) -> OAuthApp | Response:
    with state.lock:
        app = state.apps.get(params.get("client_id", ""))
    if app is None:
        return error_page("Unknown application", "The client_id does not name an OAuth app.")
    if params.get("redirect_uri") not in app.redirect_uris:
        return error_page(
            "Redirect URI mismatch", "The redirect_uri is not registered for this OAuth app."
        )
    return app


def _pkce_error(state: SandboxState, params: Params) -> str | None:
    challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
    if challenge is None:
        if method is not None:
            return "code_challenge_method was sent without code_challenge"
        return "code_challenge is required" if state.switches.require_pkce else None
    if method != "S256":
        return "code_challenge_method must be S256"
    if not _CODE_CHALLENGE.match(challenge):
        return "code_challenge is malformed"
    return None


def _authorization_error(state: SandboxState, app: OAuthApp, params: Params) -> Params | None:
    if state.switches.forced_oauth_error == "access_denied":
        return {"error": "access_denied", "error_description": "the sandbox is forcing denial"}
    response_type = params.get("response_type")
    if response_type is None:
        return {"error": "invalid_request", "error_description": "response_type is required"}
    if response_type != "code":
        description = "only response_type=code is supported"
        return {"error": "unsupported_response_type", "error_description": description}
    pkce_error = _pkce_error(state, params)
    if pkce_error:
        return {"error": "invalid_request", "error_description": pkce_error}
    requested = split_scope(params.get("scope", "")) or app.scopes
    if not all(scopes_allow(app.scopes, scope) for scope in requested):
        return {"error": "invalid_scope", "error_description": "scope exceeds the app's scopes"}
    return None


def _show_consent(state: SandboxState, app: OAuthApp, params: Params) -> Response:
    with state.lock:
        users = list(state.users.values())
    return consent_page(
        app_name=app.name,
        tailnet=state.settings.tailnet,
        scopes=split_scope(params.get("scope", "")) or app.scopes,
        users=users,
        hidden={**params, "form_token": form_token(state, params)},
    )


def _respond(
    request: Request, state: SandboxState, params: Params, choice: Choice | None
) -> Response:
    app = _registered_app(state, params)
    if isinstance(app, Response):
        return app
    redirect_uri = params["redirect_uri"]
    echoed = {"state": params["state"]} if "state" in params else {}
    error = _authorization_error(state, app, params)
    if error is not None:
        return _redirect(request, state, redirect_uri, {**error, **echoed})
    if choice is None:
        auto_login = state.switches.auto_approve
        auto_user = state.user_by_login(auto_login) if auto_login else None
        if auto_user is None:
            return _show_consent(state, app, params)
        choice = Choice(approve=True, user=auto_user)
    if not choice.approve:
        record_denial(state, app, choice.user)
        denied = {"error": "access_denied", "error_description": "the user denied the request"}
        return _redirect(request, state, redirect_uri, {**denied, **echoed})
    code = issue_code(
        state,
        app,
        choice.user,
        redirect_uri=redirect_uri,
        code_challenge=params.get("code_challenge"),
    )
    return _redirect(request, state, redirect_uri, {"code": code, **echoed})


@router.get(AUTHORIZE_PATH)
async def authorize(request: Request, state: StateDep) -> Response:
    """Show the consent page, or redirect at once with an error or (auto-approve) a code."""
    params = {
        name: request.query_params[name] for name in PARAMETER_NAMES if name in request.query_params
    }
    return _respond(request, state, params, None)


@router.post(AUTHORIZE_PATH)
async def decide(request: Request, state: StateDep) -> Response:
    """Take the consent page's Approve or Deny."""
    form = await request.form()
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    params = {name: fields[name] for name in PARAMETER_NAMES if name in fields}
    if not hmac.compare_digest(fields.get("form_token", ""), form_token(state, params)):
        return error_page("Consent form altered", "The consent form does not match its request.")
    user = state.user_by_login(fields.get("login", ""))
    decision = fields.get("decision")
    if user is None or decision not in ("approve", "deny"):
        return error_page("Incomplete consent", "Choose a user, then Approve or Deny.")
    return _respond(request, state, params, Choice(approve=decision == "approve", user=user))
