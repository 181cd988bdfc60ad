"""Which users a tailnet login stands for on /me: never someone else's."""

from __future__ import annotations

import dataclasses
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ORIGIN_API, WORKER
from service.console.holdings import holdings_of, owner_of_login, user_id_from_template
from service.crypto.keyring import KeyRing
from service.grants.store import store_grant
from service.settings import Settings
from service.users.schemas import UserUpdate
from service.users.store import put_user
from tests.helpers.api_calls import one_time_token


def with_template(settings: Settings, template: str) -> Settings:
    return settings.model_copy(update={"login_template": template})


def test_the_template_is_read_backwards_only_where_it_fits(settings: Settings) -> None:
    templated = with_template(settings, "{user_id}@example.com")
    assert user_id_from_template(templated, "alice@example.com") == "alice"
    assert user_id_from_template(templated, "Alice@EXAMPLE.com") == "Alice"
    assert user_id_from_template(templated, "alice@evil.example") is None
    assert user_id_from_template(templated, "@example.com") is None
    assert user_id_from_template(templated, "a b@example.com") is None
    prefixed = with_template(settings, "dev-{user_id}@corp.example")
    assert user_id_from_template(prefixed, "dev-bob@corp.example") == "bob"
    assert user_id_from_template(prefixed, "bob@corp.example") is None
    assert user_id_from_template(settings, "alice@example.com") is None  # no template


async def test_a_login_stands_for_users_expecting_it_in_any_case(
    session: AsyncSession, settings: Settings
) -> None:
    mine, theirs = f"u-{uuid.uuid4().hex[:8]}", f"u-{uuid.uuid4().hex[:8]}"
    login = f"{mine}@people.example"
    await put_user(
        session, WORKER, mine, UserUpdate(tailscale_login=login.upper()), origin=ORIGIN_API
    )
    other = UserUpdate(tailscale_login=f"{theirs}@people.example")
    await put_user(session, WORKER, theirs, other, origin=ORIGIN_API)
    owner = await owner_of_login(session, settings, login)
    assert owner.user_ids == (mine,)


async def test_an_explicit_login_wins_over_the_template(
    session: AsyncSession, settings: Settings
) -> None:
    templated = with_template(settings, "{user_id}@example.com")
    claimed = f"u-{uuid.uuid4().hex[:8]}"
    unclaimed = f"u-{uuid.uuid4().hex[:8]}"
    # claimed's expected login was set to someone else: the template no longer speaks for it.
    elsewhere = UserUpdate(tailscale_login="someone-else@example.com")
    await put_user(session, WORKER, claimed, elsewhere, origin=ORIGIN_API)
    assert (await owner_of_login(session, templated, f"{claimed}@example.com")).user_ids == ()
    derived = await owner_of_login(session, templated, f"{unclaimed}@example.com")
    assert derived.user_ids == (unclaimed,)


async def test_a_grant_tailscale_confirmed_the_login_gave_is_theirs_whoever_it_was_for(
    session: AsyncSession, settings: Settings, key_ring: KeyRing
) -> None:
    login = f"p-{uuid.uuid4().hex[:8]}@people.example"
    someone_else = f"u-{uuid.uuid4().hex[:8]}"
    token = dataclasses.replace(one_time_token(), login_name=login.upper())
    given = await store_grant(
        session,
        key_ring,
        token,
        user_id=someone_else,
        scope="auth_keys:create:once",
        actor=WORKER,
        origin=ORIGIN_API,
    )
    unrelated = await store_grant(
        session,
        key_ring,
        one_time_token(),
        user_id=someone_else,
        scope="auth_keys:create:once",
        actor=WORKER,
        origin=ORIGIN_API,
    )
    owner = await owner_of_login(session, settings, login)
    held = await holdings_of(session, owner)
    assert [grant.id for grant in held.grants] == [given.id]
    assert owner.has_grant(given)
    assert not owner.has_grant(unrelated)
    assert held.pending == held.devices == []
