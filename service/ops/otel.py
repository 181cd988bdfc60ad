"""The OpenTelemetry side of tracing; imported only by ``service.ops.tracing`` when asked."""

from __future__ import annotations

from functools import cache
from typing import Any

import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span
from sqlalchemy.ext.asyncio import AsyncEngine

from service.ops.logs import redact_query

EXCLUDED_URLS = "healthz,readyz,metrics"
# Attributes the ASGI instrumentation fills with the full URL, query string included.
URL_ATTRIBUTES = ("http.url", "url.full", "http.target", "url.query")


@cache
def exporting_provider() -> TracerProvider:
    """One provider per process, exporting over OTLP/HTTP to the configured endpoint."""
    # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and the exporter's OTEL_EXPORTER_OTLP_*
    # variables are read by the SDK itself.
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "tsprov"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def redact_span_url(span: Span, _request: Any) -> None:
    """A consent link's token and a callback's code and state travel in query strings."""
    attributes = getattr(span, "attributes", None) or {}
    for name in URL_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str):
            shown = "[redacted]" if name == "url.query" else redact_query(value)
            span.set_attribute(name, shown)


def trace_app(app: FastAPI, provider: TracerProvider) -> None:
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=EXCLUDED_URLS,
        server_request_hook=redact_span_url,
    )


def trace_engine(engine: AsyncEngine, provider: TracerProvider) -> None:
    # The instrumentation's declared SQLAlchemy range trails releases; it hooks the engine's
    # documented events, which SQLAlchemy 2.1 keeps, and a test checks the spans appear.
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine, tracer_provider=provider, skip_dep_check=True
    )


def trace_http(http: httpx.AsyncClient, provider: TracerProvider) -> None:
    # Calls to Tailscale carry no secret in their URLs today; redacting keeps it so.
    HTTPXClientInstrumentor.instrument_client(
        http, tracer_provider=provider, request_hook=_redact_outgoing_url
    )


async def _redact_outgoing_url(span: Span, request: Any) -> None:
    redact_span_url(span, request)
