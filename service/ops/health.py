"""Liveness, readiness and metrics for operators."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from service.ops.scrape import refresh_scrape_gauges
from service.state import AppContext
from service.web.deps import ContextDep

router = APIRouter(tags=["operations"])
READINESS_DB_TIMEOUT = 0.8
READY_EXAMPLE = {
    "status": "ready",
    "checks": {"database": True, "encryption_keys": True, "accepting": True},
}
NOT_READY_EXAMPLE = {
    "status": "not_ready",
    "checks": {"database": False, "encryption_keys": True, "accepting": True},
}
METRICS_EXAMPLE = "\n".join(
    [
        "# HELP tsprov_http_requests_total HTTP requests by route template, method and status.",
        "# TYPE tsprov_http_requests_total counter",
        'tsprov_http_requests_total{method="POST",'
        'route="/v1/provisioning-requests/{request_id}/claim",status="200"} 42.0',
        "# HELP tsprov_upstream_breaker_state This process's circuit breaker towards Tailscale.",
        "# TYPE tsprov_upstream_breaker_state gauge",
        "tsprov_upstream_breaker_state 0.0",
        "",
    ]
)


@router.get(
    "/healthz",
    summary="The process is alive (whatever the database says)",
    responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
)
async def healthz() -> dict[str, str]:
    """For a liveness probe: restart the process if this stops answering."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database answers, encryption keys are loaded and the process is not draining",
    responses={
        200: {"content": {"application/json": {"example": READY_EXAMPLE}}},
        503: {
            "description": "Not ready; `checks` says which check failed.",
            "content": {"application/json": {"example": NOT_READY_EXAMPLE}},
        },
    },
)
async def readyz(context: ContextDep) -> JSONResponse:
    """For a readiness probe: send traffic here only while this answers 200."""
    checks = await readiness_checks(context)
    ready = all(checks.values())
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


async def readiness_checks(context: AppContext) -> dict[str, bool]:
    """What ``/readyz`` decides on, each check by name."""
    return {
        "database": await _database_answers(context),
        "encryption_keys": context.key_ring is not None,
        "accepting": not context.draining,
    }


async def _database_answers(context: AppContext) -> bool:
    # Bounded: a down or saturated database must turn readiness off within a second.
    try:
        async with asyncio.timeout(READINESS_DB_TIMEOUT), context.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format); docs/operations.md lists them",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"example": METRICS_EXAMPLE}}}},
)
async def metrics(context: ContextDep) -> Response:
    """Request counts and latencies by route template, and upstream failures by code."""
    await refresh_scrape_gauges(context)
    return Response(generate_latest(context.metrics.registry), media_type=CONTENT_TYPE_LATEST)
