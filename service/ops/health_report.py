"""Everything operators check on a deployment, in one report: what ``/readyz``,
``tsprov status`` and the ``/metrics`` gauges each say, read for a page."""

from __future__ import annotations

from dataclasses import dataclass

from service.audit.sealer import sealer_lag
from service.ops.health import readiness_checks
from service.ops.status import Status, gather_status
from service.state import AppContext
from service.tailscale.observer import ObserverTokenState


@dataclass(frozen=True)
class HealthReport:
    ready: dict[str, bool]  # this process, as /readyz decides
    status: Status  # the deployment, as `tsprov status` reads it (schema, counts, job runs)
    sealer_lag: int | None  # None when the database did not answer
    breaker: str  # this process's breaker towards Tailscale: closed, open or half_open
    observer_token: ObserverTokenState

    @property
    def healthy(self) -> bool:
        return all(self.ready.values()) and self.status.ready


async def gather_health(context: AppContext) -> HealthReport:
    status = await gather_status(context.settings, context.sessions)
    lag = None
    if status.checks.get("database"):
        async with context.sessions() as session:
            lag = await sealer_lag(session)
    return HealthReport(
        ready=await readiness_checks(context),
        status=status,
        sealer_lag=lag,
        breaker=context.tailscale.breaker_state,
        observer_token=context.tailscale.observer_token_state,
    )
