"""Who is asking: Tailscale Serve's identity headers, trusted only from the proxy itself.

``TrustedIdentity`` (installed by ``service.console.routes.install_console``) reads
``Tailscale-User-Login``, ``-Name`` and ``-Profile-Pic`` when ``IDENTITY_HEADERS`` is
``tailscale-serve`` and the TCP peer is one of ``IDENTITY_PROXY_IPS``. From any other peer
it strips them, so no route can trust them by mistake, and warns once per peer.
Routes take ``PersonDep`` (a ``Person`` or None) or ``SignedInDep`` (a ``Person``, else the
plain "sign in through tailscale serve" page); ``is_console_admin`` says who may enter
/console.
"""

from __future__ import annotations

import ipaddress
import logging
import unicodedata
from dataclasses import dataclass
from email.header import decode_header, make_header
from fnmatch import fnmatchcase
from typing import Annotated

from fastapi import Depends, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from service.console.errors import ConsolePageError
from service.settings import Settings
from service.web.forwarded import tcp_peer

log = logging.getLogger("tsprov.console")

LOGIN_HEADER = b"tailscale-user-login"
NAME_HEADER = b"tailscale-user-name"
PICTURE_HEADER = b"tailscale-user-profile-pic"
IDENTITY_HEADERS = frozenset({LOGIN_HEADER, NAME_HEADER, PICTURE_HEADER})
# Set by Serve on requests that came in through Funnel, from outside the tailnet.
FUNNEL_HEADER = b"tailscale-funnel-request"
STATE_KEY = "tsprov_person"
# Peers already warned about: a bound, so a scan from many addresses cannot grow it forever.
MAX_WARNED_PEERS = 1024


@dataclass(frozen=True)
class Person:
    """A tailnet user, as the proxy in front of tsprov named them."""

    login: str
    name: str
    # An address on Tailscale's servers: the pages' CSP loads no image from elsewhere, so it
    # is kept, never shown.
    profile_pic: str


class TrustedIdentity:
    """Pure ASGI middleware: puts the proxy's ``Person`` in the request state, or nobody."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.proxies = settings.trusted_identity_proxies
        self.headers_on = bool(self.proxies)
        self.warned: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self._identify(scope)
        await self.app(scope, receive, send)

    def _identify(self, scope: Scope) -> None:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        sent = [(name, value) for name, value in headers if name in IDENTITY_HEADERS]
        if not sent:
            return
        identity = dict(sent)
        peer = _peer_address(scope)
        trusted = peer is not None and peer in self.proxies
        if trusted and _one_person(headers, identity, sent):
            person = person_from_headers(identity)
            if person is not None:
                scope.setdefault("state", {})[STATE_KEY] = person
            return
        scope["headers"] = [(name, value) for name, value in headers if name not in identity]
        if self.headers_on and not trusted:
            self._warn_once(peer or "unknown")

    def _warn_once(self, peer: str) -> None:
        if peer in self.warned or len(self.warned) >= MAX_WARNED_PEERS:
            return
        self.warned.add(peer)
        # The peer's address only: the header values are whatever the sender chose to write.
        log.warning(
            "identity headers from %s ignored: not in TSPROV_IDENTITY_PROXY_IPS "
            "(further ones from this address are ignored silently)",
            peer,
        )


def _one_person(
    headers: list[tuple[bytes, bytes]],
    identity: dict[bytes, bytes],
    sent: list[tuple[bytes, bytes]],
) -> bool:
    """Whether the proxy's headers name exactly one person: a header given twice means
    someone added one beside the proxy's; Funnel traffic (from the internet, through the
    same local proxy) names nobody."""
    return len(identity) == len(sent) and not any(name == FUNNEL_HEADER for name, _ in headers)


def _peer_address(scope: Scope) -> str | None:
    """The TCP peer, normalised as the settings are; never X-Forwarded-For."""
    peer = tcp_peer(scope)
    if not peer:
        return None
    try:
        return str(ipaddress.ip_address(peer))
    except ValueError:
        return None


def person_from_headers(identity: dict[bytes, bytes]) -> Person | None:
    """The person the headers name, or None when the login is missing or malformed."""
    login = identity.get(LOGIN_HEADER, b"").decode("latin-1").strip()
    # A login is an e-mail-like name: printable ASCII with no spaces, bounded.
    if not login or len(login) > 320 or not all(33 <= ord(char) <= 126 for char in login):
        return None
    name = _readable(identity.get(NAME_HEADER, b"")) or login
    picture = _readable(identity.get(PICTURE_HEADER, b""))
    return Person(login=login, name=name, profile_pic=picture)


def _readable(raw: bytes) -> str:
    """A header value for display: RFC 2047 words decoded (Serve encodes names that are not
    ASCII that way), control and format characters dropped, bounded."""
    text = raw.decode("latin-1")
    if "=?" in text:
        try:
            text = str(make_header(decode_header(text)))
        except (ValueError, LookupError):
            return ""
    kept = "".join(char for char in text if not _invisible(char))
    return kept.strip()[:200]


def _invisible(char: str) -> bool:
    # Control, format and unassigned characters, and the line and paragraph separators:
    # a name lands in audit rows, where none of them may split or hide a line (security.md 40).
    category = unicodedata.category(char)
    return category[0] == "C" or category in ("Zl", "Zp")


def signed_in_person(request: Request) -> Person | None:
    """The person the trusted proxy named for this request, or None."""
    person = request.scope.get("state", {}).get(STATE_KEY)
    return person if isinstance(person, Person) else None


PersonDep = Annotated[Person | None, Depends(signed_in_person)]


def require_person(person: PersonDep) -> Person:
    """The signed-in person; without one, the page saying how to reach these pages."""
    if person is None:
        raise ConsolePageError(
            403,
            "Sign in through Tailscale Serve",
            "These pages know who you are from your tailnet: open them through the tsprov "
            "address your operator published with tailscale serve (an https://….ts.net "
            "address), from a device signed in to the tailnet as you.",
            "Opened directly, or from a tagged device, tsprov cannot tell who you are and "
            "shows nothing.",
            tone="plain",
        )
    return person


SignedInDep = Annotated[Person, Depends(require_person)]


def is_console_admin(settings: Settings, login: str) -> bool:
    """Whether ``login`` matches CONSOLE_ADMINS (logins or ``*@ops.example.com`` patterns),
    case-insensitively."""
    wanted = login.casefold()
    return any(fnmatchcase(wanted, pattern.casefold()) for pattern in settings.console_admins)
