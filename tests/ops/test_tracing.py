"""Tracing is optional: nothing of OpenTelemetry loads without the endpoint variable, and
with it requests, queries and upstream calls become spans that carry no query string."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from service.main import create_app
from service.ops import otel
from service.ops.tracing import ENDPOINT_VARIABLE
from service.state import AppContext

# Builds the app and serves one request the way `tsprov serve` would, then names every
# OpenTelemetry module loaded.
BUILD_AND_SERVE = """
import asyncio, json, sys
import httpx
from service.main import create_app
from service.settings import Settings

async def main():
    app = create_app(Settings(env="development"), run_background=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/healthz")).status_code == 200
    loaded = [m for m in sys.modules if m.startswith(("opentelemetry", "service.ops.otel"))]
    print(json.dumps(sorted(loaded)))

asyncio.run(main())
"""


def loaded_modules(extra_environment: dict[str, str]) -> list[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environment |= {"TSPROV_DATABASE_URL": "postgresql://127.0.0.1:9/none"} | extra_environment
    finished = subprocess.run(
        [sys.executable, "-c", BUILD_AND_SERVE],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    modules: list[str] = json.loads(finished.stdout.strip().splitlines()[-1])
    return modules


# FastAPI itself imports the no-op OpenTelemetry API when it is installed; what tsprov adds
# (SDK, exporter, instrumentation) must stay out.
TSPROV_ONLY = (
    "opentelemetry.sdk",
    "opentelemetry.exporter",
    "opentelemetry.instrumentation",
    "service.ops.otel",
)


def test_without_the_endpoint_no_sdk_exporter_or_instrumentation_is_imported() -> None:
    loaded = loaded_modules({})
    assert [module for module in loaded if module.startswith(TSPROV_ONLY)] == []


def test_with_the_endpoint_the_instrumentation_loads() -> None:
    # Nothing listens there: the batch exporter fails quietly in the background.
    modules = loaded_modules({ENDPOINT_VARIABLE: "http://127.0.0.1:9"})
    assert "opentelemetry.instrumentation.fastapi" in modules
    assert "opentelemetry.instrumentation.sqlalchemy" in modules
    assert "opentelemetry.instrumentation.httpx" in modules
    assert "service.ops.otel" in modules


@pytest.fixture
def untrace_sqlalchemy_afterwards() -> Iterator[None]:
    """Tracing an engine wraps SQLAlchemy's ``create_engine`` and ``Engine.connect`` for the
    whole process: undone after the test, or every later test's engines would make spans,
    drawing their ids from the random state Hypothesis watches in other tests."""
    yield
    SQLAlchemyInstrumentor().uninstrument()


@pytest.mark.usefixtures("untrace_sqlalchemy_afterwards")
async def test_requests_queries_and_outgoing_calls_become_spans(context: AppContext) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(context=context)
    otel.trace_app(app, provider)
    otel.trace_engine(context.engine, provider)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tsprov.test") as client:
        otel.trace_http(client, provider)
        consent = await client.get("/authorize", params={"request": "sentinel-consent-token"})
        assert consent.status_code >= 400
        assert (await client.get("/readyz")).status_code == 200

    spans = exporter.get_finished_spans()
    # The request span nests under the test client's own span, so it is INTERNAL here; in a
    # server with no caller span it is SERVER.
    served = [span for span in spans if span.name == "GET /authorize"]
    assert len(served) == 1
    assert served[0].attributes is not None
    assert served[0].attributes["http.route"] == "/authorize"
    outgoing = [span for span in spans if span.kind.name == "CLIENT" and span.name == "GET"]
    assert len(outgoing) == 2
    queries = [span for span in spans if span.attributes and "db.statement" in span.attributes]
    assert any(span.name == "SELECT" for span in queries)
    assert not [span for span in spans if "/readyz" in span.name]
    dumped = json.dumps([dict(span.attributes or {}) for span in spans], default=str)
    assert "sentinel-consent-token" not in dumped
