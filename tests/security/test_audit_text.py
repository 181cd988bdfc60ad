"""security.md item 40: odd characters never reach audit rows or the export raw; filters
are bounded."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ANONYMOUS, Target, record_event
from service.models import AuditEvent
from tests.conftest import CallerFactory, bearer

# What a reader must never get raw: line and paragraph separators, a bidi override and an
# isolate, a C1 control (NEL), a zero-width joiner and DEL.
ODD = "\u2028\u2029\u202e\u2066\x85\u200d\x7f"
WINDOW = {"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"}


def raw_odd_characters(text: str) -> set[str]:
    return {char for char in ODD + "\n\r\t" if char in text}


async def test_item_40_refusals_store_odd_paths_and_user_ids_escaped(
    client: httpx.AsyncClient, session: AsyncSession, make_caller: CallerFactory
) -> None:
    limited = await make_caller("read", users=["alice"])
    odd_path = "/v1/users/bob%E2%80%AEnimda%0A%E2%80%A8x/provisioning-requests"
    refused = await client.get(odd_path, headers=bearer(limited))
    assert refused.status_code == 403
    unknown = await client.get(
        "/v1/users/x%C2%85y%E2%81%A6z", headers={"Authorization": "Bearer x"}
    )
    assert unknown.status_code == 401

    rows = (await session.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all()
    refusals = [row for row in rows if row.event_name.startswith("FAILED_REQUEST.")]
    assert len(refusals) == 2
    for row in refusals:
        assert raw_odd_characters(json.dumps(row.target, ensure_ascii=False)) == set()
        assert raw_odd_characters(row.user_id or "") == set()
    assert refusals[0].user_id == "bob\\u202enimda\\u000a\\u2028x"
    assert refusals[1].target["name"] == "GET /v1/users/x\\u0085y\\u2066z"


async def test_item_40_the_export_never_carries_odd_characters_raw(
    client: httpx.AsyncClient, session: AsyncSession, make_caller: CallerFactory
) -> None:
    # A row written raw, as before stored text was escaped (details are not escaped).
    await record_event(
        session,
        origin="CONFIG_API",
        actor=ANONYMOUS,
        target=Target(id="", name="odd", type="FAILED_REQUEST"),
        action="READ",
        details=f"before{ODD}after",
    )
    await session.commit()
    auditor = await make_caller("audit")
    export = await client.get("/v1/audit/export", params=WINDOW, headers=bearer(auditor))
    assert export.status_code == 200
    assert raw_odd_characters(export.text.replace("\n", "")) == set()
    lines = export.text.splitlines()
    assert len(lines) == export.text.count("\n")  # no line broken by a separator
    details = [json.loads(line)["actionDetails"] for line in lines]
    assert f"before{ODD}after" in details  # escaped in JSON, read back unchanged


async def test_item_40_repeated_audit_filters_are_bounded(
    client: httpx.AsyncClient, make_caller: CallerFactory
) -> None:
    auditor = await make_caller("audit")
    twenty = [("actor", f"a{n}") for n in range(20)]
    allowed = await client.get(
        "/v1/audit", params=[*WINDOW.items(), *twenty], headers=bearer(auditor)
    )
    assert allowed.status_code == 200
    for name in ("actor", "target", "event"):
        many = [(name, f"term{n}") for n in range(21)]
        refused = await client.get(
            "/v1/audit", params=[*WINDOW.items(), *many], headers=bearer(auditor)
        )
        assert refused.status_code == 422, name
    long_term = await client.get(
        "/v1/audit", params={**WINDOW, "target": "t" * 321}, headers=bearer(auditor)
    )
    assert long_term.status_code == 422
