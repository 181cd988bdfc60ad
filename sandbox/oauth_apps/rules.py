"""What Tailscale accepts in an OAuth app: redirect URIs, scopes, node attributes, callers."""

import ipaddress
import re
from urllib.parse import urlsplit

from sandbox.bearer import Caller
from sandbox.errors import NOT_PERMITTED, ApiError
from sandbox.schemas import OAuthAppBody

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
ATTRIBUTE_SCOPE = "devices:posture_attributes"
APP_SCOPES = frozenset({"auth_keys:create", "auth_keys:create:once", ATTRIBUTE_SCOPE})
NODE_ATTRIBUTE = re.compile(r"^custom:[A-Za-z0-9_:]{1,121}$")


def _refused(uri: str) -> ValueError:
    return ValueError(f'redirect URI "{uri}" is not permitted')


def check_redirect_uri(uri: str) -> str:
    """Refuse what Tailscale refuses: fragments, and off loopback, non-https or raw IPs."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if not host or parts.fragment:
        raise _refused(uri)
    if host in LOOPBACK_HOSTS:
        # A loopback URI may use any scheme (a native app's own, for one).
        return uri
    if parts.scheme != "https":
        raise _refused(uri)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return uri
    raise _refused(uri)


def check_app_body(body: OAuthAppBody, caller: Caller) -> None:
    """Refuse an app Tailscale would refuse, with the words Tailscale uses (400 or 403)."""
    for uri in body.redirectURIs:
        try:
            check_redirect_uri(uri)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
    invalid = [scope for scope in body.scopes if scope not in APP_SCOPES]
    if invalid:
        raise ApiError(400, f"invalid scopes: [{' '.join(invalid)}]")
    bad = [name for name in body.allowedNodeAttributes if not NODE_ATTRIBUTE.match(name)]
    if bad:
        raise ApiError(400, f"invalid node attributes: [{' '.join(bad)}]")
    if body.allowedNodeAttributes:
        if ATTRIBUTE_SCOPE not in body.scopes:
            raise ApiError(400, f"allowedNodeAttributes requires the {ATTRIBUTE_SCOPE} scope")
        if not caller.holds(ATTRIBUTE_SCOPE):
            raise ApiError(403, NOT_PERMITTED)
