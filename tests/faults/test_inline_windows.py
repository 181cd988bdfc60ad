"""security.md item 39: windows hold inline, whether or not the purge job has run."""

from __future__ import annotations

from tests.faults.conftest import GrantFactory, ServiceFactory
from tests.faults.test_idempotency import age_record, create, record_times
from tests.helpers.fault_flows import claim, ready_request
from tests.helpers.steps import Sessions, new_user


async def test_item_39_a_claim_answer_is_not_replayed_after_its_window_without_the_job(
    start_granted: GrantFactory, caller_key: str, db: Sessions
) -> None:
    service, user = await start_granted()
    request_id = await ready_request(service.api, caller_key, user)
    first = await claim(service.api, caller_key, request_id, "k-lagging")
    assert first.status_code == 200
    assert (await claim(service.api, caller_key, request_id, "k-lagging")).json() == first.json()

    await age_record(db, "k-lagging", "wipe_at")  # and no purge job runs
    assert (await record_times(db, "k-lagging"))["response_ciphertext"] is not None
    late = await claim(service.api, caller_key, request_id, "k-lagging")
    assert late.status_code == 409
    assert late.json()["code"] == "already_claimed"
    assert "auth_key" not in late.text


async def test_item_39_an_expired_idempotency_key_starts_afresh_without_the_job(
    start_service: ServiceFactory, caller_key: str, db: Sessions
) -> None:
    service = await start_service()
    user = new_user()
    first = await create(service.api, caller_key, user, "k-stale", hostname="a")
    await age_record(db, "k-stale", "expires_at")  # and no purge job runs

    # Even with another body: past its 24 hours the key names nothing any more.
    later = await create(service.api, caller_key, user, "k-stale", hostname="b")
    assert later.status_code == 201, later.text
    assert later.json()["id"] != first.json()["id"]
    assert later.json()["hostname"] == "b"
    again = await create(service.api, caller_key, user, "k-stale", hostname="b")
    assert again.json() == later.json()
