"""Numbers RFC 8785 cannot write exactly never stop the sealer: they are recorded as text."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.chain import verify_chain
from service.audit.events import WORKER, Target, record_event, sealable
from tests.unit.audit_support import seal_now


@pytest.mark.parametrize(
    ("value", "recorded"),
    [
        (2**53 - 1, 2**53 - 1),
        (2**60, str(2**60)),
        (-(2**64), str(-(2**64))),
        (float("inf"), "inf"),
        (1e16, "1e+16"),
        (0.5, 0.5),
        ({"nested": [1, 2**70, True, None, 0.5]}, {"nested": [1, str(2**70), True, None, 0.5]}),
    ],
)
def test_only_numbers_without_an_exact_form_become_text(value: object, recorded: object) -> None:
    assert sealable(value) == recorded


async def test_an_event_holding_a_huge_integer_is_sealed_and_verifies(
    session: AsyncSession,
) -> None:
    event = await record_event(
        session,
        origin="CONTROL",
        actor=WORKER,
        target=Target("g", "u", "GRANT"),
        action="UPDATE",
        old={"limit": 2**63},
        new={"limit": 1e16},
    )

    assert (await seal_now(session)).sealed == 1
    report = await verify_chain(session)
    assert (report.ok, report.checked, report.pending) == (True, 1, 0)
    assert (event.old, event.new) == ({"limit": str(2**63)}, {"limit": "1e+16"})
