"""OpenTelemetry tracing, only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

Without the variable nothing from OpenTelemetry is imported, so the ``tsprov[otel]`` extra
stays optional and costs nothing when unused.
"""

from __future__ import annotations

import os

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"


def tracing_requested() -> bool:
    return bool(os.environ.get(ENDPOINT_VARIABLE, "").strip())


def trace_app(app: FastAPI) -> None:
    """Trace every request; must run before the app serves (it adds a middleware)."""
    if tracing_requested():
        from service.ops import otel

        otel.trace_app(app, otel.exporting_provider())


def trace_clients(engine: AsyncEngine, http: httpx.AsyncClient) -> None:
    """Trace every query on ``engine`` and every call through ``http``."""
    if tracing_requested():
        from service.ops import otel

        provider = otel.exporting_provider()
        otel.trace_engine(engine, provider)
        otel.trace_http(http, provider)
