"""An in-process tsprov and sandbox set up for identity binding: a policy, a grant mode, and
the sandbox's answers to what Tailscale leaves unknown about who made a consent key.

The sandbox approves every consent as alice; each test chooses whether the user expects
alice (a match) or bob (someone else consented).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from service.jobs import run_job
from service.settings import IdentityBinding
from tests.conftest import bearer
from tests.security.inprocess import ADMIN_TOKEN, InProcessStack

OTHER_LOGIN = "bob@example.com"
# What the observer needs for every source and for deleting what a mismatch leaves.
OBSERVER_SCOPES = ["devices:core", "logs:configuration:read", "auth_keys", "users:read"]
SANDBOX_ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
StackFactory = Callable[..., Awaitable[InProcessStack]]
CallerFactory = Callable[..., Awaitable[str]]


@dataclass(frozen=True)
class Unknowns:
    """The sandbox's answer to each [?] about a key made under consent."""

    key_user_id: str  # the key's userId: "present" or "empty"
    observer_access: str  # the observer reading a user's key: "read", "not_found", "forbidden"
    key_log: str  # API_KEY.CREATE's actor: "user", "app", or "absent"

    def some_source_tells(self, mode: str) -> bool:
        """A mint's answer carries the key's userId, so a reusable grant's first key needs no
        read of the key itself."""
        key_readable = self.observer_access == "read" or mode == "reusable"
        owner_known = self.key_user_id == "present" and key_readable
        return owner_known or self.key_log == "user"

    def switches(self) -> dict[str, Any]:
        return {
            "consent_key_user_id": self.key_user_id,
            "observer_user_key_access": self.observer_access,
            "consent_key_log": self.key_log,
            "observer_scopes": OBSERVER_SCOPES,
        }

    def __str__(self) -> str:
        return f"userId-{self.key_user_id}/observer-{self.observer_access}/log-{self.key_log}"


EVERY_UNKNOWN = [
    Unknowns(user_id, access, log)
    for user_id in ("present", "empty")
    for access in ("read", "not_found", "forbidden")
    for log in ("user", "app", "absent")
]
NOTHING_TELLS = Unknowns("empty", "forbidden", "absent")
KEY_OWNER_TELLS = Unknowns("present", "read", "absent")


@dataclass
class IdentityStack:
    stack: InProcessStack
    caller: dict[str, str]
    admin: dict[str, str]

    @property
    def api(self) -> httpx.AsyncClient:
        return self.stack.api

    async def switch(self, **switches: Any) -> None:
        answer = await self.stack.sandbox.patch("/sandbox/switches", json=switches)
        assert answer.status_code == 200, answer.text

    async def new_user(self, login: str | None) -> str:
        user = f"id-{uuid.uuid4().hex[:12]}"
        if login is not None:
            body = {"tailscale_login": login}
            put = await self.api.put(f"/v1/users/{user}", headers=self.admin, json=body)
            assert put.status_code == 200, put.text
        return user

    async def create(self, user: str, hostname: str | None) -> dict[str, Any]:
        body = {"hostname": hostname} if hostname else {}
        answer = await self.api.post(
            f"/v1/users/{user}/provisioning-requests", headers=self.caller, json=body
        )
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created

    async def read(self, request_id: str) -> dict[str, Any]:
        answer = await self.api.get(f"/v1/provisioning-requests/{request_id}", headers=self.caller)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    async def claim(self, request_id: str) -> httpx.Response:
        return await self.api.post(
            f"/v1/provisioning-requests/{request_id}/claim", headers=self.caller
        )

    async def grants(self, user: str) -> list[dict[str, Any]]:
        answer = await self.api.get(f"/v1/users/{user}", headers=self.caller)
        assert answer.status_code == 200, answer.text
        grants: list[dict[str, Any]] = answer.json()["grants"]
        return grants

    async def audit_errors(self, user: str) -> list[str]:
        window = {"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"}
        trail = await self.api.get(
            "/v1/audit", params={**window, "user_id": user}, headers=self.caller
        )
        assert trail.status_code == 200, trail.text
        return [str(event["error"]) for event in trail.json()["logs"] if event["error"]]

    async def join(self, auth_key: str, hostname: str | None) -> dict[str, Any]:
        body = {"authKey": auth_key, "hostname": hostname or "laptop", "os": "linux"}
        joined = await self.stack.sandbox.post("/sandbox/join", json=body)
        assert joined.status_code == 200, joined.text
        device: dict[str, Any] = joined.json()
        return device

    async def live_keys(self) -> list[dict[str, Any]]:
        """Every usable auth key on the (fresh, per-test) tailnet."""
        listed = await self.stack.sandbox.get(
            "/api/v2/tailnet/-/keys", params={"all": "true"}, headers=SANDBOX_ADMIN
        )
        assert listed.status_code == 200, listed.text
        return [key for key in listed.json()["keys"] if key["keyType"] == "auth"]

    async def device_ids(self) -> set[str]:
        listed = await self.stack.sandbox.get("/api/v2/tailnet/-/devices", headers=SANDBOX_ADMIN)
        assert listed.status_code == 200, listed.text
        return {device["nodeId"] for device in listed.json()["devices"]}

    async def watch_once(self) -> None:
        """One background interval's run of the join watch."""
        await run_job(self.stack.context, "watch_joined_devices")


async def identity_stack(
    make_stack: StackFactory,
    make_caller: CallerFactory,
    *,
    binding: IdentityBinding,
    mode: str,
    unknowns: Unknowns,
    **overrides: Any,
) -> IdentityStack:
    scope = "auth_keys:create:once" if mode == "once" else "auth_keys:create"
    stack = await make_stack(
        identity_binding=binding, oauth_scope=scope, observer=True, **overrides
    )
    made = IdentityStack(
        stack,
        bearer(await make_caller("provision", "read", "audit")),
        bearer(await make_caller("admin")),
    )
    await made.switch(grant_mode=mode, **unknowns.switches())
    return made
