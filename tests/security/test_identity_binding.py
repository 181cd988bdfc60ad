"""Identity binding (security.md items 11, 32, 33) under every answer the sandbox gives to
what Tailscale leaves unknown: whether a consent key names its user, whether the observer may
read it, and whether the configuration log names the person who made it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from service.crypto.keyring import generate_key_entry
from service.settings import IdentityBinding, Settings
from tests.security.identity_flows import (
    EVERY_UNKNOWN,
    KEY_OWNER_TELLS,
    NOTHING_TELLS,
    OTHER_LOGIN,
    CallerFactory,
    IdentityStack,
    StackFactory,
    Unknowns,
    identity_stack,
)
from tests.security.inprocess import CONSENTING_LOGIN
from tests.security.test_secret_lifecycle import PRODUCTION

BEFORE_HANDOUT = IdentityBinding.BEFORE_HANDOUT
AFTER_JOIN = IdentityBinding.AFTER_JOIN
MODES = ["once", "reusable"]
HOSTNAMES = [None, "devbox"]
MISMATCH_AUDITED = f"{CONSENTING_LOGIN!r} is not the expected {OTHER_LOGIN!r}"


async def consent_and_claim(ids: IdentityStack, request: dict[str, Any], mode: str) -> Any:
    """Walk the consent as alice, then claim; the claim's answer (a once refusal: the page)."""
    page = await ids.stack.consent(request["consent_url"])
    if mode == "once" and page.status_code != 303:
        return page
    assert page.status_code == 303, page.text
    return await ids.claim(request["id"])


async def expect_torn_down(
    ids: IdentityStack, user: str, request_id: str, other: dict[str, Any]
) -> None:
    """Failed, every grant revoked, the other open request back to consent with a new link."""
    after = await ids.read(request_id)
    assert (after["status"], after["failure"]["code"]) == ("failed", "identity_mismatch")
    assert all(grant["status"] == "revoked" for grant in await ids.grants(user))
    renewed = await ids.read(other["id"])
    assert renewed["status"] == "awaiting_consent"
    assert renewed["consent_url"] not in (None, other["consent_url"])
    assert any(MISMATCH_AUDITED in error for error in await ids.audit_errors(user))


@pytest.mark.parametrize("hostname", HOSTNAMES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("unknowns", EVERY_UNKNOWN, ids=str)
async def test_item_32_a_consent_by_another_login_never_yields_a_key(
    make_stack_in_process: StackFactory,
    make_caller: CallerFactory,
    unknowns: Unknowns,
    mode: str,
    hostname: str | None,
) -> None:
    ids = await identity_stack(
        make_stack_in_process, make_caller, binding=BEFORE_HANDOUT, mode=mode, unknowns=unknowns
    )
    user = await ids.new_user(OTHER_LOGIN)
    request = await ids.create(user, hostname)
    other = await ids.create(user, hostname)

    answer = await consent_and_claim(ids, request, mode)

    assert answer.status_code in (403, 409), answer.text
    assert "tskey-auth-" not in answer.text
    again = await ids.claim(request["id"])
    assert again.status_code in (403, 409)
    assert "tskey-auth-" not in again.text
    if unknowns.some_source_tells(mode):
        await expect_torn_down(ids, user, request["id"], other)
    else:
        after = await ids.read(request["id"])
        assert (after["status"], after["failure"]["code"]) == ("failed", "identity_unverified")
        assert again.json()["code"] == "identity_unverified"
        assert "users:read" in again.json()["detail"]
    # The key went nowhere, and is gone wherever the observer may delete a user's key; a
    # one-time key also dies when tsprov presents its code again (security.md 41).
    deletable = unknowns.observer_access == "read" or mode == "once"
    assert (await ids.live_keys() == []) is deletable


@pytest.mark.parametrize("hostname", HOSTNAMES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("unknowns", EVERY_UNKNOWN, ids=str)
async def test_item_11_another_login_is_refused_where_known_and_its_device_removed_after_join(
    make_stack_in_process: StackFactory,
    make_caller: CallerFactory,
    unknowns: Unknowns,
    mode: str,
    hostname: str | None,
) -> None:
    ids = await identity_stack(
        make_stack_in_process, make_caller, binding=AFTER_JOIN, mode=mode, unknowns=unknowns
    )
    user = await ids.new_user(OTHER_LOGIN)
    request = await ids.create(user, hostname)
    other = await ids.create(user, hostname)

    answer = await consent_and_claim(ids, request, mode)

    if unknowns.some_source_tells(mode):
        assert answer.status_code == 403
        assert "tskey-auth-" not in answer.text
        await expect_torn_down(ids, user, request["id"], other)
        return
    # Nothing told before the handout: the device that joins does, within one interval.
    assert answer.status_code == 200, answer.text
    device = await ids.join(answer.json()["auth_key"], hostname)
    assert device["user"] == CONSENTING_LOGIN
    await ids.watch_once()
    assert device["nodeId"] not in await ids.device_ids()
    await expect_torn_down(ids, user, request["id"], other)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("unknowns", [KEY_OWNER_TELLS, Unknowns("empty", "forbidden", "user")])
async def test_item_32_the_expected_login_gets_its_key_and_a_verified_grant_is_not_rechecked(
    make_stack_in_process: StackFactory,
    make_caller: CallerFactory,
    unknowns: Unknowns,
    mode: str,
) -> None:
    ids = await identity_stack(
        make_stack_in_process, make_caller, binding=BEFORE_HANDOUT, mode=mode, unknowns=unknowns
    )
    user = await ids.new_user(CONSENTING_LOGIN)
    request = await ids.create(user, None)

    answer = await consent_and_claim(ids, request, mode)

    assert answer.status_code == 200, answer.text
    assert answer.json()["auth_key"].startswith("tskey-auth-")
    assert [grant["login_name"] for grant in await ids.grants(user)] == [CONSENTING_LOGIN]
    if mode == "reusable":
        # Confirmed once: a later claim is not checked again, even where nothing could tell.
        await ids.switch(**NOTHING_TELLS.switches())
        later = await ids.create(user, None)
        assert later["status"] == "ready"
        assert (await ids.claim(later["id"])).status_code == 200


async def test_item_11_a_device_is_linked_by_its_enrolling_key_never_by_hostname(
    make_stack_in_process: StackFactory, make_caller: CallerFactory
) -> None:
    ids = await identity_stack(
        make_stack_in_process, make_caller, binding=AFTER_JOIN, mode="once", unknowns=NOTHING_TELLS
    )
    user = await ids.new_user(CONSENTING_LOGIN)
    first, second = [await ids.create(user, "devbox") for _ in range(2)]
    claims = [await consent_and_claim(ids, request, "once") for request in (first, second)]
    assert [claim.status_code for claim in claims] == [200, 200]

    # Only the second key is used, under the hostname both requests asked for.
    device = await ids.join(claims[1].json()["auth_key"], "devbox")
    await ids.watch_once()

    assert (await ids.read(first["id"]))["status"] == "claimed"
    joined = await ids.read(second["id"])
    assert joined["status"] == "joined"
    assert joined["device"]["node_id"] == device["nodeId"]


async def test_item_33_a_user_without_an_expected_login_cannot_be_sent_to_consent(
    make_stack_in_process: StackFactory, make_caller: CallerFactory
) -> None:
    ids = await identity_stack(
        make_stack_in_process,
        make_caller,
        binding=BEFORE_HANDOUT,
        mode="once",
        unknowns=KEY_OWNER_TELLS,
    )
    user = await ids.new_user(None)
    refused = await ids.api.post(
        f"/v1/users/{user}/provisioning-requests", headers=ids.caller, json={}
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "tailscale_login_required"
    assert "PUT /v1/users/" in refused.json()["detail"]
    assert "TSPROV_LOGIN_TEMPLATE" in refused.json()["detail"]
    listed = await ids.api.get(f"/v1/users/{user}/provisioning-requests", headers=ids.caller)
    assert listed.json()["items"] == []

    # Setting the login is enough: the same user may now be sent to consent.
    put = await ids.api.put(
        f"/v1/users/{user}", headers=ids.admin, json={"tailscale_login": CONSENTING_LOGIN}
    )
    assert put.status_code == 200
    assert (await ids.create(user, None))["status"] == "awaiting_consent"


async def test_item_33_the_login_template_names_the_expected_login(
    make_stack_in_process: StackFactory, make_caller: CallerFactory
) -> None:
    ids = await identity_stack(
        make_stack_in_process,
        make_caller,
        binding=BEFORE_HANDOUT,
        mode="once",
        unknowns=KEY_OWNER_TELLS,
        login_template="{user_id}@example.com",
    )
    # alice@example.com is who the sandbox approves as; carol's request is consented by alice.
    matching = await ids.create("alice", None)
    assert (await consent_and_claim(ids, matching, "once")).status_code == 200
    foreign = await ids.create("carol", None)
    assert (await consent_and_claim(ids, foreign, "once")).status_code == 403
    assert (await ids.read(foreign["id"]))["failure"]["code"] == "identity_mismatch"


def test_item_32_production_defaults_to_before_handout_and_refuses_off() -> None:
    production = {**PRODUCTION, "encryption_keys": SecretStr(generate_key_entry())}
    assert Settings(**production).binding == BEFORE_HANDOUT
    with pytest.raises(ValidationError, match="TSPROV_IDENTITY_BINDING=off is for development"):
        Settings(**production, identity_binding="off")
    development = Settings(env="development", identity_binding="off")
    assert development.binding == IdentityBinding.OFF


@pytest.mark.parametrize("template", ["{user}@example.com", "{user_id}@{domain}", "{0}", "{"])
def test_item_33_a_login_template_names_the_user_and_nothing_else(template: str) -> None:
    with pytest.raises(ValidationError, match="LOGIN_TEMPLATE"):
        Settings(env="development", login_template=template)
