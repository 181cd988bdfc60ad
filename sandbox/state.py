"""The sandbox's whole in-memory state behind one lock, seeded from the settings."""

import hashlib
import secrets
import threading
from collections import deque

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
from sandbox.settings import GrantMode, SandboxSettings, needs_tags, scope_for_grant_mode
from sandbox.switches import Switches

REQUEST_LOG_LIMIT = 10_000


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
                created=self.clock.now(),
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
                scopes=list(settings.observer_scopes),
                tags=list(settings.observer_tags),
                created=now,
                creator_id=self.admin.id,
            )
        }
        # The admin token is the admin's personal API token: it acts as that user.
        self.access_tokens: dict[str, AccessToken] = {
            secret_digest(settings.admin_token.get_secret_value()): AccessToken(
                kind="user", scopes=frozenset({"all"}), expires=None, user_id=self.admin.id
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

    def set_observer_scopes(self, scopes: list[str]) -> None:
        """Change the observer's scopes; tokens asked without `scope` follow at once."""
        observer = self.clients[self.settings.observer_client_id]
        if needs_tags(scopes) and not observer.tags:
            raise ValueError("an OAuth client with devices:core or auth_keys must have tags")
        self.switches.observer_scopes = list(scopes)
        observer.scopes = list(scopes)

    def known_tailnet(self, tailnet: str) -> bool:
        """True for `-` and the tailnet's own name."""
        return tailnet in ("-", self.settings.tailnet)
