"""The ``Settings`` class: every setting, its default, and the checks on its value."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from string import Formatter
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.settings.choices import (
    CommaList,
    IdentityBinding,
    IdentityHeaders,
    split_commas,
)
from service.settings.production import production_problems


class Settings(BaseSettings):
    """One place for every setting; api.md lists them."""

    model_config = SettingsConfigDict(env_prefix="TSPROV_", extra="ignore")

    env: Literal["production", "development"] = "production"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/tsprov"
    public_url: str = "http://127.0.0.1:8000"
    tailscale_login_url: str = "https://login.tailscale.com"
    tailscale_api_url: str = "https://api.tailscale.com"
    tailnet: str = "-"
    oauth_client_id: str = ""
    oauth_client_secret: SecretStr = SecretStr("")
    oauth_scope: str = "auth_keys:create:once"
    tailscale_issuer: str = ""
    # Tailscale does not document a token-response field naming the consenting user;
    # when one is known, name it here and identity binding uses it.
    token_login_field: str = ""
    # Unset: before_handout in production, after_join in development, where the sandbox's
    # users rarely match the ids tests and demos make up.
    identity_binding: IdentityBinding | None = None
    # Derives a user's expected login when none was set, e.g. "{user_id}@example.com".
    login_template: str = ""
    observer_client_id: str = ""
    observer_client_secret: SecretStr = SecretStr("")
    encryption_keys: SecretStr = SecretStr("")
    encryption_keys_file: Path | None = None
    # Ed25519, signs the audit chain's checkpoints (``tsprov keys generate --signing``).
    audit_signing_key: SecretStr = SecretStr("")
    audit_signing_key_file: Path | None = None
    # How often the sealer signs the chain's head at most: each checkpoint is kept and
    # checked by verify, so one per sealing round would pile up.
    audit_checkpoint_interval_seconds: float = Field(default=60.0, ge=0)
    return_to_allowlist: CommaList = Field(default_factory=list)
    app_role: str = "tsprov_app"
    audit_retention_days: int = Field(default=90, ge=1)
    db_pool_size: int = Field(default=10, ge=1)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=10_000, ge=100)
    # Off behind PgBouncer in transaction mode: a prepared statement lives on one server
    # connection, and the next transaction may run on another.
    db_statement_cache: bool = True
    # LISTEN needs a session of its own for as long as the process lives, which a
    # transaction-mode pooler cannot give: point this at Postgres itself. Empty: DATABASE_URL.
    listen_database_url: str = ""
    # Empty: json in production, text in development.
    log_format: Literal["json", "text", ""] = ""
    background_interval_seconds: float = Field(default=5.0, gt=0)
    shutdown_drain_seconds: float = Field(default=5.0, ge=0)
    upstream_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    upstream_read_timeout_seconds: float = Field(default=10.0, gt=0)
    upstream_deadline_seconds: float = Field(default=20.0, gt=0)
    upstream_max_attempts: int = Field(default=3, ge=1, le=10)
    # A key minted at claim time only has to live until its device joins; a short default
    # also bounds a key whose answer was lost and that nobody received.
    # Bodies are read whole before any route runs (see web.body_limit): a cap on their size,
    # and a time by which all of it must have arrived. 64 KiB in 10 s is a floor of 6.4 KiB/s,
    # far below any real client, and it frees a connection held by a drip within seconds.
    max_body_bytes: int = Field(default=65536, ge=1024)
    body_timeout_seconds: float = Field(default=10.0, gt=0)
    # Refused anonymous requests (bad keys, junk callbacks) per source address and per key
    # prefix, in each replica: a burst, then this many a second, then 429.
    refusal_burst: int = Field(default=20, ge=1)
    refusal_per_second: float = Field(default=2.0, gt=0)
    # Concurrent long-polls (wait_seconds), per replica: per caller key, and in all.
    long_poll_limit_per_caller: int = Field(default=20, ge=1)
    long_poll_limit: int = Field(default=500, ge=1)
    minted_key_expiry_seconds: int = Field(default=3600, ge=60, le=90 * 86400)
    # A custom posture attribute prefix (e.g. "custom:tsprov_request"): each device tsprov
    # provisions gets "<prefix>:<request id>" set to true, so Tailscale itself names the
    # request. Needs the observer to hold devices:posture_attributes; empty: not set.
    node_attribute: str = Field(default="", pattern=r"^(custom:[A-Za-z0-9_:]{1,88})?$")
    # Private, link-local and loopback webhook destinations are refused unless listed here.
    webhook_allowed_networks: CommaList = Field(default_factory=list)
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0)
    webhook_retry_max_interval_seconds: float = Field(default=6 * 3600.0, gt=0)
    webhook_retry_window_seconds: float = Field(default=24 * 3600.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    identity_headers: IdentityHeaders = IdentityHeaders.OFF
    # The peers trusted to set the identity headers; empty: loopback, where Serve connects
    # from. Addresses only: the TCP peer, never X-Forwarded-For, which anyone can write.
    identity_proxy_ips: CommaList = Field(default_factory=list)
    # Logins, or patterns such as "*@ops.example.com", that may enter /console.
    console_admins: CommaList = Field(default_factory=list)

    _split_allowlist = field_validator("return_to_allowlist", mode="before")(split_commas)
    _split_networks = field_validator("webhook_allowed_networks", mode="before")(split_commas)
    _split_identity = field_validator("identity_proxy_ips", "console_admins", mode="before")(
        split_commas
    )

    @field_validator("identity_proxy_ips")
    @classmethod
    def _proxy_addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"{address!r} is not an address such as 127.0.0.1") from None
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not a network such as 10.0.0.0/8") from None
        return value

    @field_validator("database_url", "listen_database_url")
    @classmethod
    def _asyncpg_driver(cls, value: str) -> str:
        if not value:
            return value
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value.removeprefix(prefix)
        if not value.startswith("postgresql+asyncpg://"):
            raise ValueError("DATABASE_URL must be a postgresql:// URL")
        return value

    @field_validator("public_url", "tailscale_login_url", "tailscale_api_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("login_template")
    @classmethod
    def _template_names_only_the_user(cls, value: str) -> str:
        if not value:
            return value
        try:
            fields = {name for _, name, _, _ in Formatter().parse(value) if name is not None}
        except ValueError:
            fields = set()
        if fields != {"user_id"}:
            raise ValueError("LOGIN_TEMPLATE must contain {user_id} and no other field")
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env != "production":
            return self
        problems = production_problems(self)
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self

    @property
    def operation_lease(self) -> timedelta:
        """Longer than one call can take (upstream calls and queries), with room to spare.

        Work still unfinished after this was left by a process that died: an in-flight
        Idempotency-Key, or a key mint with no outcome.
        """
        return max(timedelta(minutes=2), timedelta(seconds=3 * self.upstream_deadline_seconds + 10))

    @property
    def binding(self) -> IdentityBinding:
        """The identity binding in force, the environment's default when none was set."""
        if self.identity_binding is not None:
            return self.identity_binding
        if self.env == "production":
            return IdentityBinding.BEFORE_HANDOUT
        return IdentityBinding.AFTER_JOIN

    def expected_login(self, user_id: str, tailscale_login: str | None) -> str | None:
        """The login expected to consent for a user: the one set, else the template's."""
        if tailscale_login:
            return tailscale_login
        return self.login_template.format(user_id=user_id) if self.login_template else None

    @property
    def trusted_identity_proxies(self) -> frozenset[str]:
        """Peer addresses whose identity headers count; none while the headers are off."""
        if self.identity_headers == IdentityHeaders.OFF:
            return frozenset()
        listed = self.identity_proxy_ips or ["127.0.0.1", "::1"]
        return frozenset(str(ipaddress.ip_address(address)) for address in listed)

    @property
    def listen_url(self) -> str:
        """Where the LISTEN connection goes: a direct Postgres URL, never a pooler's."""
        return self.listen_database_url or self.database_url

    @property
    def effective_log_format(self) -> Literal["json", "text"]:
        if self.log_format:
            return self.log_format
        return "json" if self.env == "production" else "text"

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url}/callback"

    @property
    def issuer(self) -> str:
        return self.tailscale_issuer or self.tailscale_login_url

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @cached_property
    def key_ring_text(self) -> str:
        """The raw key ring, from the variable or the file."""
        if self.encryption_keys_file is not None:
            return self.encryption_keys_file.read_text().strip()
        return self.encryption_keys.get_secret_value()

    @cached_property
    def audit_signing_key_text(self) -> str:
        """The audit signing key's text, from the variable or the file."""
        if self.audit_signing_key_file is not None:
            return self.audit_signing_key_file.read_text().strip()
        return self.audit_signing_key.get_secret_value()
