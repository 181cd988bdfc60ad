"""CSRF tokens for the console's forms: a per-browser secret in a cookie, and a form token
derived from it for the signed-in login.

Why this and not an HMAC under a server key: the person is named by Serve on every request,
so there is no session of ours to hang a token on, and the only long-lived keys tsprov has
are the encryption key (used for nothing else, security.md 15) and the audit signing key.
A key made per process would break across replicas and restarts. So the secret lives in the
browser: a random cookie another site cannot read (same-origin), sent back only to tsprov
(SameSite=Strict), and — behind Serve, which is always https — pinned to this host by the
``__Host-`` prefix, so a neighbouring ``*.ts.net`` host cannot plant one of its choosing
(the weakness of a plain double-submit cookie). The form carries HMAC(secret, login): a
forged POST knows neither, and a token minted for alice is no use to anyone signed in as bob.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from fastapi import Request, Response

from service.state import AppContext

COOKIE = "tsprov_console"
SECURE_COOKIE = "__Host-tsprov_console"
_SECRET_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def _cookie_name(request: Request) -> str:
    context: AppContext = request.app.state.context
    return SECURE_COOKIE if context.settings.secure_cookies else COOKIE


def browser_secret(request: Request) -> tuple[str, bool]:
    """This browser's secret, and whether it is new (then the answer must set it)."""
    sent = request.cookies.get(_cookie_name(request), "")
    if _SECRET_SHAPE.match(sent):
        return sent, False
    return secrets.token_urlsafe(32), True


def form_token(secret: str, login: str) -> str:
    """What the forms carry: bound to the browser's secret and to the person's login."""
    digest = hmac.new(secret.encode(), login.casefold().encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_valid(request: Request, login: str, token: str) -> bool:
    """Whether ``token`` came from a page tsprov showed this browser for this login."""
    sent = request.cookies.get(_cookie_name(request), "")
    if not _SECRET_SHAPE.match(sent) or not token:
        return False
    return hmac.compare_digest(form_token(sent, login), token)


def set_secret_cookie(request: Request, response: Response, secret: str) -> None:
    context: AppContext = request.app.state.context
    response.set_cookie(
        _cookie_name(request),
        secret,
        path="/",
        secure=context.settings.secure_cookies,
        httponly=True,
        samesite="strict",
    )
