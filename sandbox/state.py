"""The sandbox's whole in-memory state behind one lock, seeded from the settings."""

import hashlib
import secrets
import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from sandbox.clock import Clock
from sandbox.identifiers import secret_digest
from sandbox.models import (
    AccessToken,
    AuditEvent,
    AuthKey,
    AuthorizationCode,
    Device,
    FaultRule,
    Grant,
    LoggedRequest,
    OAuthApp,
    OAuthClient,
    RefreshToken,
    User,
)
from sandbox.settings import GrantMode, SandboxSettings, scope_for_grant_mode

OBSERVER_SCOPES = ["devices:core", "logs:configuration:read"]
REQUEST_LOG_LIMIT = 10_000


@dataclass
class Switches:
    """Behaviours that differ between plausible Tailscales; changeable at run time."""

    require_pkce: bool
    grant_mode: GrantMode
    access_token_ttl: int
    send_iss: bool
    auto_approve: str | None
    identity_field: str | None
    forced_oauth_error: str | None
    device_approval: bool
    # Whether a refresh rotates the refresh token is [?] at Tailscale; rotation is strictest.
    rotate_refresh_tokens: bool = True

    @classmethod
    def from_settings(cls, settings: SandboxSettings) -> "Switches":
        """Return the switches as the settings set them at start."""
        return cls(
            require_pkce=settings.require_pkce,
            grant_mode=settings.grant_mode,
            access_token_ttl=settings.access_token_ttl,
            send_iss=settings.send_iss,
            auto_approve=settings.auto_approve or None,
            identity_field=settings.identity_field or None,
            forced_oauth_error=None,
            device_approval=settings.device_approval,
        )

    def as_json(self) -> dict[str, Any]:
        """Return the switches as the control API shows them."""
        return asdict(self)


def _display_name(login_name: str) -> str:
    return login_name.split("@", 1)[0].replace(".", " ").title()


def _stable_user_id(login_name: str) -> str:
    # Derived from the login so ids survive a reset and match across sandbox runs.
    return "u" + hashlib.sha256(login_name.encode()).hexdigest()[:10] + "CNTRL"


class SandboxState:
    """Every store of the sandbox; callers hold `lock` while they read or change them."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self.clock = Clock()
        # Signs consent-form fields so a posted form cannot widen what the page showed.
        self.form_key = secrets.token_bytes(32)
        self.dns_suffix = "tail" + hashlib.sha256(settings.tailnet.encode()).hexdigest()[:6]
        with self.lock:
            self._seed()

    def reset(self) -> None:
        """Return to the seeded tailnet, the start-up switches and wall time."""
        with self.lock:
            self._seed()

    def _seed(self) -> None:
        self.clock.rewind()
        self.switches = Switches.from_settings(self.settings)
        self.users: dict[str, User] = {}
        for position, login in enumerate(self.settings.users):
            user = User(
                id=_stable_user_id(login),
                login_name=login,
                display_name=_display_name(login),
                role="admin" if position == 0 else "member",
            )
            self.users[user.id] = user
        self._seed_credentials()
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.grants: dict[str, Grant] = {}
        self.keys: dict[str, AuthKey] = {}
        self.devices: dict[str, Device] = {}
        self.events: list[AuditEvent] = []
        self.faults: list[FaultRule] = []
        self.requests: deque[LoggedRequest] = deque(maxlen=REQUEST_LOG_LIMIT)
        self.next_fault_id = 1
        self.next_request_id = 1
        self.next_address = 1

    def _seed_credentials(self) -> None:
        settings, now = self.settings, self.clock.now()
        self.apps: dict[str, OAuthApp] = {
            settings.app_client_id: OAuthApp(
                id=settings.app_client_id,
                name=settings.app_name,
                description="Provisions devices for named people",
                redirect_uris=list(settings.app_redirect_uris),
                scopes=list(settings.app_scopes),
                allowed_node_attributes=[],
                secret_digest=secret_digest(settings.app_client_secret.get_secret_value()),
                created=now,
                updated=now,
            )
        }
        self.clients: dict[str, OAuthClient] = {
            settings.observer_client_id: OAuthClient(
                id=settings.observer_client_id,
                description="observer",
                secret_digest=secret_digest(settings.observer_client_secret.get_secret_value()),
                scopes=list(OBSERVER_SCOPES),
            )
        }
        self.access_tokens: dict[str, AccessToken] = {
            secret_digest(settings.admin_token.get_secret_value()): AccessToken(
                kind="admin", scopes=frozenset({"all"}), expires=None, user_id=self.admin.id
            )
        }

    @property
    def admin(self) -> User:
        """The tailnet's admin: the first seeded user."""
        return next(user for user in self.users.values() if user.role == "admin")

    def user_by_login(self, login_name: str) -> User | None:
        """Return the user with this login name, if any."""
        return next((u for u in self.users.values() if u.login_name == login_name), None)

    def set_grant_mode(self, mode: GrantMode) -> None:
        """Switch the grant mode; the seeded app follows when its scopes were defaulted."""
        self.switches.grant_mode = mode
        seeded_app = self.apps.get(self.settings.app_client_id)
        if self.settings.scopes_follow_grant_mode and seeded_app is not None:
            seeded_app.scopes = [scope_for_grant_mode(mode)]

    def known_tailnet(self, tailnet: str) -> bool:
        """True for `-` and the tailnet's own name."""
        return tailnet in ("-", self.settings.tailnet)
