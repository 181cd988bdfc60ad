"""Liveness, readiness and metrics for operators."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from service.ops.scrape import refresh_scrape_gauges
from service.web.deps import ContextDep

router = APIRouter(tags=["operations"])
READINESS_DB_TIMEOUT = 0.8


@router.get("/healthz", summary="The process is alive (whatever the database says)")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database answers, encryption keys are loaded and the process is not draining",
    responses={503: {"description": "Not ready; `checks` says why."}},
)
async def readyz(context: ContextDep) -> JSONResponse:
    checks = {
        "database": await _database_answers(context),
        "encryption_keys": context.key_ring is not None,
        "accepting": not context.draining,
    }
    ready = all(checks.values())
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


async def _database_answers(context: ContextDep) -> bool:
    # Bounded: a down or saturated database must turn readiness off within a second.
    try:
        async with asyncio.timeout(READINESS_DB_TIMEOUT), context.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(context: ContextDep) -> Response:
    await refresh_scrape_gauges(context)
    return Response(generate_latest(context.metrics.registry), media_type=CONTENT_TYPE_LATEST)
