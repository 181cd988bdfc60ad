"""The text ``tsprov dev`` prints: commands a newcomer can paste, in order.

The steps are a list, each a title and its shell lines, so a step slots in where it belongs;
they are numbered when printed. Every answer is pretty-printed by ``python3 -m json.tool``.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

PRETTY = "python3 -m json.tool"
_FIELD = "python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])'"
# A page's title, so a shell shows which page answered (a browser shows the page itself).
_TITLE = "sed -n 's:.*<title>\\(.*\\)</title>.*:\\1:p'"
DEMO_USER = "alice"
DEMO_LOGIN = "alice@example.com"
DEMO_HOSTNAME = "devbox-1"
DEMO_SCOPES = ("provision", "read", "audit", "admin")
WRONG_LOGIN = "bob@example.com"


@dataclass(frozen=True)
class Step:
    title: str
    shell: str
    # The login a person signs in as at the link this step prints, when it prints one.
    approve_as: str | None = None


@dataclass(frozen=True)
class Banner:
    """What the stack is made of, for the lines above the steps."""

    service_url: str
    sandbox_url: str
    sandbox_users: list[str]
    database: str
    secrets_file: str
    seconds: float
    # The stand-in for tailscale serve and the login it signs in as (``tsprov dev --as``).
    serve_url: str | None = None
    signed_in_as: str | None = None


def steps(
    sandbox_url: str,
    user: str = DEMO_USER,
    login: str = DEMO_LOGIN,
    serve: tuple[str, str] | None = None,
) -> list[Step]:
    """The walkthrough's steps for ``user``, who must approve as ``login``; with ``serve``
    (the stand-in's URL and the login it signs in as), the pages for people too."""
    pages = serve_steps(*serve, user=user) if serve else []
    return [*_good_path(sandbox_url, user, login), *_wrong_person(user, login), *pages]


def serve_steps(serve_url: str, signed_in_as: str, user: str = DEMO_USER) -> list[Step]:
    """/me and /console, reached through the stand-in for tailscale serve."""
    return [
        Step(
            f"Open {serve_url}/me in a browser. The stand-in for tailscale serve signs you in "
            f"as {signed_in_as}, and tsprov shows what it holds under that login: {user}'s "
            "requests, the grant and the device, with withdraw, remove and decline. From a "
            "shell, the page's title:",
            f'curl -s "{serve_url}/me" | {_TITLE}',
        ),
        Step(
            f"Open {serve_url}/console: the operators' view ({signed_in_as} is an operator "
            f"under tsprov dev). Pick a request of {user} to follow its timeline, event by "
            "event; the other pages list users, callers, the audit trail (with verify) and "
            "health:",
            f'curl -s "{serve_url}/console?user={user}" | {_TITLE}',
        ),
    ]


def _good_path(sandbox_url: str, user: str, login: str) -> list[Step]:
    auth = '-H "Authorization: Bearer $TSPROV_KEY"'
    return [
        Step(
            f'Tell tsprov which Tailscale login the user "{user}" must approve as '
            "(tsprov dev already did; a consent or device under another login is refused):",
            f'curl -s -X PUT "$TSPROV/v1/users/{user}" {auth} \\\n'
            f"  -H 'Content-Type: application/json' "
            f'-d \'{{"tailscale_login": "{login}"}}\' | {PRETTY}',
        ),
        Step(
            f"Ask for a device for {user}:",
            f'REQ=$(curl -s -X POST "$TSPROV/v1/users/{user}/provisioning-requests" {auth} '
            f"\\\n  -H 'Content-Type: application/json' "
            f'-d \'{{"hostname": "{DEMO_HOSTNAME}"}}\')\n'
            f'echo "$REQ" | {PRETTY}\n'
            f'REQ_ID=$(echo "$REQ" | {_FIELD} id)',
        ),
        Step(
            f"Open the consent link in a browser, sign in as {login} and Approve; the "
            "result page names the user, the device and what happens next:",
            f'echo "$REQ" | {_FIELD} consent_url',
            approve_as=login,
        ),
        Step(
            "Once approved, claim the auth key (exactly once):",
            f'CLAIM=$(curl -s -X POST "$TSPROV/v1/provisioning-requests/$REQ_ID/claim" {auth})\n'
            f'echo "$CLAIM" | {_FIELD} tailscale_up',
        ),
        Step(
            "Join, as `tailscale up --auth-key=…` would (the sandbox stands in for a device):",
            f'AUTH_KEY=$(echo "$CLAIM" | {_FIELD} auth_key)\n'
            f"curl -s -X POST \"{sandbox_url}/sandbox/join\" -H 'Content-Type: application/json' "
            f'\\\n  -d "{{\\"authKey\\": \\"$AUTH_KEY\\", \\"hostname\\": \\"{DEMO_HOSTNAME}\\", '
            f'\\"os\\": \\"linux\\"}}" | {PRETTY}',
        ),
        Step(
            f'Watch the request turn "joined", owned by {login} (it answers as soon as it has):',
            f'curl -s "$TSPROV/v1/provisioning-requests/$REQ_ID?wait_seconds=10" {auth} | {PRETTY}',
        ),
    ]


def _wrong_person(user: str, login: str) -> list[Step]:
    """The point of it all: a consent by anyone but the expected person hands out nothing."""
    auth = '-H "Authorization: Bearer $TSPROV_KEY"'
    return [
        Step(
            f"Now the identity check. Ask for another device for {user}, open its consent link "
            f'and this time sign in as {WRONG_LOGIN}: tsprov refuses it ("Wrong Tailscale '
            'account") and hands nothing out:',
            f'REQ2=$(curl -s -X POST "$TSPROV/v1/users/{user}/provisioning-requests" {auth} '
            "\\\n  -H 'Content-Type: application/json' -d '{}')\n"
            f'REQ2_ID=$(echo "$REQ2" | {_FIELD} id)\n'
            f'echo "$REQ2" | {_FIELD} consent_url',
            approve_as=WRONG_LOGIN,
        ),
        Step(
            f"That request failed and says why; {login} keeps every device already joined:",
            f'curl -s "$TSPROV/v1/provisioning-requests/$REQ2_ID" {auth} | {PRETTY}',
        ),
        Step(
            f"The audit trail of all of it, for {user}:",
            f'curl -s "$TSPROV/v1/audit?start=2000-01-01T00:00:00Z&end=2100-01-01T00:00:00Z'
            f'&user_id={user}" {auth} | {PRETTY}',
        ),
    ]


def render_steps(numbered: list[Step]) -> str:
    return "\n\n".join(
        textwrap.fill(f"# {number}. {step.title}", width=88, subsequent_indent="#    ")
        + f"\n{step.shell}"
        for number, step in enumerate(numbered, 1)
    )


def walkthrough(banner: Banner, key: str) -> str:
    """The banner and the steps, ending in a newline."""
    users = ", ".join(banner.sandbox_users)
    return f"""
tsprov is ready ({banner.seconds:.1f} s).
  service   {banner.service_url}   (API docs: {banner.service_url}/docs, metrics: /metrics)
  sandbox   {banner.sandbox_url}   (the Tailscale stand-in; its users: {users})
  database  {banner.database}
  secrets   {banner.secrets_file}   (the sandbox's OAuth credentials and the key ring)

A demo caller key was made for this run (scopes {", ".join(DEMO_SCOPES)}), and the user
"{DEMO_USER}" expects the Tailscale login {DEMO_LOGIN}. Paste these lines into another
terminal, in order:

export TSPROV_KEY={key}
export TSPROV={banner.service_url}

{render_steps(steps(banner.sandbox_url, serve=_serve_of(banner)))}
{_serve_hint(banner)}
Ctrl-C stops everything tsprov dev started.
"""


def _serve_of(banner: Banner) -> tuple[str, str] | None:
    if banner.serve_url and banner.signed_in_as:
        return banner.serve_url, banner.signed_in_as
    return None


def _serve_hint(banner: Banner) -> str:
    if _serve_of(banner):
        return ""
    return f"""
The pages for people, /me and /console, need a tailnet identity. Run
  tsprov dev --as {DEMO_LOGIN}
to front tsprov with a stand-in for tailscale serve that signs you in as that login; the
walkthrough then ends with them.
"""
