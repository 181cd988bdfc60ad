"""Each problem the service answers arrives as its own exception type."""

from __future__ import annotations

import uuid

import pytest
from person import open_consent_link
from running_stack import RunningStack

from tsprov_client import (
    AlreadyClaimed,
    Client,
    Conflict,
    Forbidden,
    NotFound,
    NotReady,
    RequestOptions,
    TsprovError,
    Unauthorized,
    ValidationFailed,
)


def test_a_second_claim_raises_already_claimed(
    client: Client, alice: str, approving_as_alice: None
) -> None:
    request = client.create_request(alice)
    assert request.consent_url is not None
    open_consent_link(request.consent_url)
    client.claim(request.id)

    with pytest.raises(AlreadyClaimed) as refused:
        client.claim(request.id)

    assert isinstance(refused.value, Conflict)
    assert (refused.value.status, refused.value.code) == (409, "already_claimed")


def test_claiming_before_consent_raises_not_ready_with_the_request_status(
    client: Client, alice: str
) -> None:
    request = client.create_request(alice)
    with pytest.raises(NotReady) as refused:
        client.claim(request.id)
    assert refused.value.request_status == "awaiting_consent"


def test_a_caller_limited_to_other_users_gets_forbidden(stack: RunningStack, alice: str) -> None:
    key = stack.create_caller("provision", "read", users=("team-*",))
    with Client(stack.service_url, key) as limited, pytest.raises(Forbidden) as refused:
        limited.create_request(alice)
    assert refused.value.status == 403


def test_an_unknown_request_raises_not_found(client: Client) -> None:
    with pytest.raises(NotFound) as refused:
        client.get_request(str(uuid.uuid4()))
    assert refused.value.detail


def test_an_invalid_hostname_raises_validation_failed_naming_the_field(
    client: Client, alice: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        client.create_request(alice, RequestOptions(hostname="not a hostname!"))
    assert refused.value.status == 422
    assert any(error["loc"][-1] == "hostname" for error in refused.value.errors)


def test_a_wrong_key_raises_unauthorized_without_echoing_it(stack: RunningStack) -> None:
    wrong = "tsprov_" + "x" * 43
    with Client(stack.service_url, wrong) as stranger, pytest.raises(Unauthorized) as refused:
        stranger.get_user("anyone")
    assert isinstance(refused.value, TsprovError)
    assert wrong not in str(refused.value)
    assert wrong not in repr(refused.value.problem)
