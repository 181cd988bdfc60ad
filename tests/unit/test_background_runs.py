"""Each background job notes when it last ran, for `tsprov status`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.jobs import last_runs, run_job
from service.state import AppContext


async def test_a_job_that_ran_is_noted_and_a_second_run_moves_the_time(
    context: AppContext, sessions: async_sessionmaker[AsyncSession]
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    await run_job(context, "expire_requests")
    async with sessions() as session:
        first = (await last_runs(session))["expire_requests"]
    await run_job(context, "expire_requests")
    async with sessions() as session:
        runs = await last_runs(session)
    assert first >= before
    assert runs["expire_requests"] > first
    assert "link_to_tailscale_log" not in runs
