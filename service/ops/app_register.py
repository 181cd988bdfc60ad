"""``tsprov app register``: create tsprov's OAuth app at Tailscale with an admin's API token.

The token comes from ``TSPROV_TAILSCALE_ADMIN_TOKEN`` or the file ``…_FILE`` names, never
from an argument (argv is visible to every user of the machine). The app's secret is
shown by Tailscale once; it goes to a new 0600 file, never to stdout.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from service.settings import Settings

TOKEN_VARIABLE = "TSPROV_TAILSCALE_ADMIN_TOKEN"  # noqa: S105  (a variable's name)
DEFAULT_SECRET_FILE = Path(".tsprov/oauth-app.env")
DESCRIPTION = "tsprov: devices that carry the identity of the person who approved them"


class AppRegisterError(Exception):
    """A one-line reason the app was not registered."""


def admin_token() -> str:
    """The admin's API token, from the environment or the file it names."""
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    path = os.environ.get(f"{TOKEN_VARIABLE}_FILE", "").strip()
    if not token and path:
        token = Path(path).read_text().strip()
    if not token:
        raise AppRegisterError(
            f"no admin API token: set {TOKEN_VARIABLE} or {TOKEN_VARIABLE}_FILE "
            "(a token with the oauth_apps scope)"
        )
    return token


def app_body(settings: Settings, name: str) -> dict[str, Any]:
    """The app as tsprov needs it: its callback, and the scope of its grant mode."""
    return {
        "name": name,
        "description": DESCRIPTION,
        "redirectURIs": [settings.redirect_uri],
        "scopes": settings.oauth_scope.split(),
    }


def tailscale_error(answer: httpx.Response) -> str:
    try:
        message = answer.json().get("message", "")
    except ValueError:
        message = ""
    return f"Tailscale answered {answer.status_code}" + (f": {message}" if message else "")


@dataclass(frozen=True)
class RegisteredApp:
    client_id: str
    secret_file: Path


def register_app(settings: Settings, token: str, name: str, secret_file: Path) -> RegisteredApp:
    """Create the app and write its id and secret, as settings, to a new 0600 file."""
    if secret_file.exists():
        raise AppRegisterError(f"{secret_file} exists; move it away or pass --secret-file")
    url = f"{settings.tailscale_api_url}/api/v2/tailnet/{settings.tailnet}/oauth-apps"
    try:
        answer = httpx.post(
            url,
            json=app_body(settings, name),
            headers={"Authorization": f"Bearer {token}"},
            timeout=settings.upstream_deadline_seconds,
        )
    except httpx.HTTPError as exc:
        raise AppRegisterError(f"could not reach Tailscale: {type(exc).__name__}") from exc
    if answer.status_code != 200:
        raise AppRegisterError(tailscale_error(answer))
    app = answer.json()
    write_settings_file(secret_file, app["id"], app["clientSecret"])
    return RegisteredApp(app["id"], secret_file)


def write_settings_file(path: Path, client_id: str, secret: str) -> None:
    """An environment file (systemd, compose, ``set -a; .``) readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # O_EXCL: never through a link planted at the path, never over an older secret.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(f"TSPROV_OAUTH_CLIENT_ID={client_id}\nTSPROV_OAUTH_CLIENT_SECRET={secret}\n")


def run(settings: Settings, name: str, secret_file: Path) -> int:
    registered = register_app(settings, admin_token(), name, secret_file)
    print(f"registered OAuth app {name!r}: client id {registered.client_id}")
    print(f"redirect URI {settings.redirect_uri}, scopes {settings.oauth_scope}")
    print(f"its id and secret are in {registered.secret_file} (mode 0600), as settings")
    return 0


def add_parser(sub: Any, command: Callable[[argparse.Namespace], int]) -> None:
    app = sub.add_parser("app", help="tsprov's OAuth app at Tailscale")
    actions = app.add_subparsers(dest="action", required=True)
    register = actions.add_parser(
        "register", help=f"create the OAuth app with an admin API token ({TOKEN_VARIABLE}[_FILE])"
    )
    register.add_argument("--name", default="tsprov", help="the app's name (3-50 of A-Za-z0-9._-)")
    register.add_argument(
        "--secret-file",
        type=Path,
        default=DEFAULT_SECRET_FILE,
        help=f"a new 0600 file for the app's id and secret, as settings ({DEFAULT_SECRET_FILE})",
    )
    app.set_defaults(func=command)
