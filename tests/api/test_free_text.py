"""Free text refuses control characters of every kind, and keeps ordinary Unicode."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import CallerFactory, bearer

UNPRINTABLE = [
    "\x00",  # NUL
    "\x1b",  # ESC: terminal escape sequences in a log viewer
    "\x7f",  # DEL
    "\x80",  # first C1 control
    "\x85",  # NEL, a line break to many log readers
    "\x9b",  # CSI, the one-byte form of ESC [
    "\x9f",  # last C1 control
    "\u2028",  # LINE SEPARATOR
    "\u2029",  # PARAGRAPH SEPARATOR
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\u2066",  # LEFT-TO-RIGHT ISOLATE
]


@pytest.fixture
async def admin(make_caller: CallerFactory) -> dict[str, str]:
    return bearer(await make_caller("admin"))


@pytest.mark.parametrize("field", ["display_name", "tailscale_login"])
@pytest.mark.parametrize("character", UNPRINTABLE, ids=lambda c: f"U+{ord(c):04X}")
async def test_user_text_with_a_control_character_is_422(
    client: httpx.AsyncClient, admin: dict[str, str], field: str, character: str
) -> None:
    body = {field: f"alice{character}@example.com"}
    response = await client.put("/v1/users/alice", headers=admin, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"
    assert character not in response.text
    assert (await client.get("/v1/users/alice", headers=admin)).status_code == 404


async def test_ordinary_unicode_names_are_kept(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = {"display_name": "Zoë Ødegård \u2013 山田 (ops)", "tailscale_login": "zoë@example.com"}
    response = await client.put("/v1/users/zoe", headers=admin, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["display_name"] == body["display_name"]


@pytest.mark.parametrize("character", ["\x85", "\u2028", "\x9b"], ids=["NEL", "LS", "CSI"])
async def test_audit_filters_with_a_control_character_are_422(
    client: httpx.AsyncClient, make_caller: CallerFactory, character: str
) -> None:
    auditor = bearer(await make_caller("audit"))
    window = {"start": "2026-04-01T09:00:00Z", "end": "2026-04-01T10:00:00Z"}
    for name in ("actor", "target", "event"):
        params = {**window, name: f"x{character}y"}
        response = await client.get("/v1/audit", params=params, headers=auditor)
        assert response.status_code == 422, (name, response.text)
