"""Signed checkpoints: truncation, removal and renaming are caught against a published one.

The attacker here owns the database: they can delete events, rewrite seals and delete the
checkpoints kept in it, but not sign. What they cannot reach is a checkpoint published
elsewhere (log line, /metrics, the export), passed to verify as ``expect``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.chain import Expectation, verify_chain
from service.audit.sealer import seal_audit_events
from service.audit.signing import AuditSigner, CheckpointFacts, generate_signing_key
from service.jobs import run_job
from service.models import AuditEvent, AuditSeal, AuditSignedCheckpoint
from service.state import AppContext
from tests.conftest import CallerFactory, bearer
from tests.unit.audit_support import append_at, let_this_test_seal, seal_now
from tests.unit.test_audit_chain import NOW, chain_of

SIGNER = AuditSigner.parse(generate_signing_key())


async def published_chain(
    session: AsyncSession, count: int
) -> tuple[list[AuditEvent], Expectation]:
    """``count`` sealed events and the checkpoint published for them."""
    events = await chain_of(session, count)
    checkpoint = (await seal_now(session, SIGNER)).checkpoint
    assert checkpoint is not None
    assert checkpoint.event_seq == events[-1].seq
    return events, Expectation(checkpoint.event_seq, checkpoint.hash)


async def cover_tracks(session: AsyncSession, from_position: int) -> None:
    """Re-seal everything from ``from_position`` on and drop the checkpoints kept here."""
    await session.execute(text("DELETE FROM audit_seal WHERE position >= :p"), {"p": from_position})
    await session.execute(text("DELETE FROM audit_signed_checkpoint"))
    await seal_now(session)  # without the key: no new checkpoint can be signed


async def position_of(session: AsyncSession, event: AuditEvent) -> int:
    position = await session.scalar(
        select(AuditSeal.position).where(AuditSeal.event_seq == event.seq)
    )
    assert position is not None
    return position


async def test_item_42_a_deleted_tail_is_caught_against_a_published_checkpoint(
    session: AsyncSession,
) -> None:
    events, published = await published_chain(session, 5)
    assert (await verify_chain(session, signer=SIGNER, expect=published)).ok
    await session.execute(text("DELETE FROM audit_event WHERE seq >= :s"), {"s": events[3].seq})
    kept_here = await verify_chain(session, signer=SIGNER)
    assert (kept_here.ok, kept_here.reason) == (
        False,
        "missing: the chain ends at count 3, but a checkpoint was signed at count 5",
    )
    await session.execute(text("DELETE FROM audit_signed_checkpoint"))
    # With the database's own checkpoints gone too, only the published one tells.
    assert (await verify_chain(session, signer=SIGNER)).ok
    report = await verify_chain(session, signer=SIGNER, expect=published)
    assert not report.ok
    assert (
        report.reason
        == f"missing: the expected checkpoint's event {events[4].seq} is not in the chain"
    )


async def test_item_42_a_deleted_middle_is_caught_against_a_published_checkpoint(
    session: AsyncSession,
) -> None:
    events, published = await published_chain(session, 5)
    gap = await position_of(session, events[2])
    await session.execute(text("DELETE FROM audit_event WHERE seq = :s"), {"s": events[2].seq})
    plain = await verify_chain(session, signer=SIGNER)
    assert (plain.ok, plain.first_bad_event) == (False, str(events[3].id))
    await cover_tracks(session, gap)
    assert (await verify_chain(session, signer=SIGNER)).ok
    report = await verify_chain(session, signer=SIGNER, expect=published)
    assert (report.ok, report.first_bad_event) == (False, str(events[4].id))
    assert report.reason == "rewritten: the expected checkpoint names another hash"


async def test_item_42_an_edited_event_name_is_caught_against_a_published_checkpoint(
    session: AsyncSession,
) -> None:
    events, published = await published_chain(session, 4)
    renamed = "GRANT.READ"  # hidden from readers filtering on PROVISIONING_REQUEST.CREATE
    await session.execute(
        text("UPDATE audit_event SET event_name = :n WHERE seq = :s"),
        {"n": renamed, "s": events[1].seq},
    )
    plain = await verify_chain(session, signer=SIGNER)
    assert (plain.ok, plain.first_bad_event) == (False, str(events[1].id))
    assert plain.reason == "edited: its content no longer matches its hash"
    await cover_tracks(session, await position_of(session, events[1]))
    assert (await verify_chain(session, signer=SIGNER)).ok
    report = await verify_chain(session, signer=SIGNER, expect=published)
    assert (report.ok, report.first_bad_event) == (False, str(events[3].id))


async def test_every_checkpoint_signature_is_checked(session: AsyncSession) -> None:
    await published_chain(session, 2)
    await append_at(session, NOW)
    await seal_now(session, SIGNER)
    assert (await verify_chain(session, signer=SIGNER)).checkpoint == 3
    other = AuditSigner.parse(generate_signing_key())
    assert (await verify_chain(session, signer=other)).reason == (
        "the checkpoint at count 3 is signed by another key"
    )
    assert (await verify_chain(session)).reason == (
        "no audit signing key is configured, so the checkpoint signatures cannot be checked"
    )
    # Moved back to name an earlier head, with the signature left as it was.
    await session.execute(text("UPDATE audit_signed_checkpoint SET hash = :h WHERE position = 2"),
                          {"h": bytes(32)})  # fmt: skip
    forged = await verify_chain(session, signer=SIGNER)
    assert forged.reason == "the checkpoint at count 2 has a forged signature"


def test_a_checkpoint_signs_what_is_published() -> None:
    facts = CheckpointFacts(seq=7, count=5, hash=bytes(range(32)), time=NOW)
    signature = SIGNER.sign(facts)
    assert SIGNER.verifies(facts, signature)
    assert facts.message() == (
        b'{"count":5,"hash":"' + bytes(range(32)).hex().encode()
        + b'","seq":7,"time":"2026-06-01T00:00:00.000000Z"}'
    )  # fmt: skip
    assert not SIGNER.verifies(CheckpointFacts(7, 6, facts.hash, NOW), signature)


def test_a_malformed_expectation_is_refused() -> None:
    assert Expectation.parse(f"12:{'ab' * 32}") == Expectation(12, bytes([0xAB] * 32))
    for text_ in ("12", "x:" + "ab" * 32, "12:abc", f"12:{'ab' * 31}"):
        with pytest.raises(ValueError, match="SEQ:HASH"):
            Expectation.parse(text_)


@pytest.fixture
def signing_context(context: AppContext) -> AppContext:
    context.audit_signer = SIGNER
    return context


async def test_the_sealing_job_publishes_its_checkpoint(
    signing_context: AppContext,
    session: AsyncSession,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await chain_of(session, 4)
    await session.commit()
    await let_this_test_seal(session)
    caplog.set_level(logging.INFO, logger="tsprov.audit")
    assert await run_job(signing_context, "seal_audit_trail") == 4
    checkpoint = await session.scalar(select(AuditSignedCheckpoint))
    assert checkpoint is not None
    assert checkpoint.position == 4
    line = f"audit checkpoint seq={checkpoint.event_seq} count=4 hash={checkpoint.hash.hex()}"
    assert any(record.getMessage().startswith(line) for record in caplog.records)
    metrics = (await client.get("/metrics")).text
    assert "tsprov_audit_checkpoint_count 4.0" in metrics
    assert f'hash="{checkpoint.hash.hex()}"' in metrics


async def test_checkpoints_are_listed_newest_first_and_exported(
    signing_context: AppContext,
    session: AsyncSession,
    client: httpx.AsyncClient,
    make_caller: CallerFactory,
) -> None:
    for _ in range(3):
        await append_at(session, NOW)
        await seal_now(session, SIGNER)
    await session.commit()
    auditor = bearer(await make_caller("audit"))
    first = await client.get("/v1/audit/checkpoints", params={"limit": 2}, headers=auditor)
    assert first.status_code == 200, first.text
    assert [item["count"] for item in first.json()["items"]] == [3, 2]
    cursor = first.json()["next_cursor"]
    rest = await client.get(
        "/v1/audit/checkpoints", params={"limit": 2, "cursor": cursor}, headers=auditor
    )
    assert [item["count"] for item in rest.json()["items"]] == [1]
    assert rest.json()["next_cursor"] is None
    newest = first.json()["items"][0]
    assert newest["key_id"] == SIGNER.key_id
    facts = CheckpointFacts(
        newest["seq"], 3, bytes.fromhex(newest["hash"]), datetime.fromisoformat(newest["time"])
    )
    assert SIGNER.verifies(facts, bytes.fromhex(newest["signature"]))
    window = {"start": "2026-05-31T00:00:00Z", "end": "2026-06-02T00:00:00Z"}
    export = await client.get("/v1/audit/export", params=window, headers=auditor)
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [set(line) for line in lines[-2:]] == [set(lines[0]), {"checkpoint"}]
    assert lines[-1]["checkpoint"] == newest
    provisioner = bearer(await make_caller("provision"))
    assert (await client.get("/v1/audit/checkpoints", headers=provisioner)).status_code == 403
    bad = await client.get("/v1/audit/checkpoints", params={"cursor": "!!"}, headers=auditor)
    assert bad.status_code == 422


async def test_the_head_is_signed_at_most_once_an_interval_and_never_left_unsigned(
    session: AsyncSession,
) -> None:
    hourly = timedelta(hours=1)
    await append_at(session, NOW)
    await let_this_test_seal(session)
    first = await seal_audit_events(session, SIGNER, checkpoint_every=hourly)
    assert (first.sealed, first.checkpoint is not None) == (1, True)
    await append_at(session, NOW)
    await let_this_test_seal(session)
    within = await seal_audit_events(session, SIGNER, checkpoint_every=hourly)
    assert (within.sealed, within.checkpoint) == (1, None)
    # Nothing new to seal, but the head is past the latest checkpoint and it is due.
    quiet = await seal_audit_events(session, SIGNER)
    assert (quiet.sealed, quiet.checkpoint is not None) == (0, True)
    assert quiet.checkpoint is not None
    assert quiet.checkpoint.position == 2
    assert (await seal_audit_events(session, SIGNER)).checkpoint is None
