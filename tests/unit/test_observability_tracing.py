"""OpenTelemetry traces: off without an exporter configured; with one, one trace across services."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.util._once import Once

from services.common.observability import (
    configure_tracing,
    current_request_id,
    install_observability,
    propagate_async,
)
from services.common.observability.logs import ContextFilter, JsonLineFormatter
from services.common.observability.tracing import ENDPOINT_VARIABLES, tracing_configured
from tests.support.inprocess import served


@pytest.fixture
def no_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*ENDPOINT_VARIABLES, "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER"]:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    """The access log lines, as configure_logging formats them (without touching the root)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter("upstream"))
    handler.setFormatter(JsonLineFormatter())
    access = logging.getLogger("services.access")
    level = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    yield stream
    access.removeHandler(handler)
    access.setLevel(level)


@pytest.fixture
def global_tracing(no_exporter: None) -> Iterator[None]:
    """Undo what configure_tracing does to the process: its tracer provider, httpx's patch."""
    yield
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()
    # The API allows setting the global provider once per process; its own test utilities
    # (opentelemetry-test-utils, reset_trace_globals) reset it like this between tests.
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    instrumentor = HTTPXClientInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


@pytest.mark.parametrize(
    ("environ", "configured"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_tracing_is_on_only_with_an_otlp_endpoint(
    environ: dict[str, str], configured: bool
) -> None:
    assert tracing_configured(environ) is configured


def test_tracing_is_off_by_default_and_installs_nothing(global_tracing: None) -> None:
    app = FastAPI()
    assert configure_tracing(app, "items") is False
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    assert not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
    assert not hasattr(app.state, "tracer_provider")


def test_without_an_exporter_the_sdk_is_never_imported() -> None:
    # In a fresh interpreter: this one has the SDK loaded by the imports above.
    script = (
        "import sys\n"
        "from fastapi import FastAPI\n"
        "from services.common.observability import install_observability\n"
        "install_observability(FastAPI(), 'items')\n"
        "loaded = [m for m in sys.modules if m.startswith(('opentelemetry.sdk',"
        " 'opentelemetry.instrumentation', 'opentelemetry.exporter'))]\n"
        "print(loaded)\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environ, check=True
    )
    assert ran.stdout.strip() == "[]"


def downstream_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}", operation_id="getItem")
    async def get_item(item_id: int) -> dict[str, Any]:
        """An item, and the request id this service saw."""
        return {"id": item_id, "request_id": current_request_id()}

    install_observability(app, "downstream")
    return app


def upstream_app(base_url: str) -> FastAPI:
    app = FastAPI()

    @app.get("/relay/{item_id}", operation_id="relay")
    async def relay(item_id: int) -> dict[str, Any]:
        """Asks the downstream service over real HTTP, as the services ask each other."""
        async with httpx.AsyncClient(
            base_url=base_url, trust_env=False, event_hooks={"request": [propagate_async]}
        ) as client:
            answer = await client.get(f"/items/{item_id}")
        return answer.json()  # type: ignore[no-any-return]

    return app


def finished(exporter: InMemorySpanExporter, *names: str) -> tuple[ReadableSpan, ...]:
    """The spans exported once those `names` have ended (the served app ends its in a thread)."""
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    deadline = time.monotonic() + 5
    while True:
        provider.force_flush()
        spans = exporter.get_finished_spans()
        if set(names) <= {s.name for s in spans} or time.monotonic() > deadline:
            return spans
        time.sleep(0.02)


def ancestors(span: ReadableSpan, spans: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    """The spans `span` descends from, nearest first."""
    by_id = {s.context.span_id: s for s in spans}
    found = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        found.append(span)
    return found


@pytest.mark.asyncio
async def test_with_an_exporter_one_trace_spans_both_services(
    global_tracing: None, monkeypatch: pytest.MonkeyPatch, access_lines: io.StringIO
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    exporter = InMemorySpanExporter()
    assert configure_tracing(FastAPI(), "upstream", exporter=exporter) is True
    # Both services in this process share the provider set first, and its exporter.
    with served(downstream_app()) as base_url:
        app = upstream_app(base_url)
        install_observability(app, "upstream")
        assert HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/relay/9", headers={"X-Request-ID": "traced-1"})
        assert response.json() == {"id": 9, "request_id": "traced-1"}
        spans = finished(exporter, "GET /relay/{item_id}", "GET", "GET /items/{item_id}")
    servers = {s.name: s for s in spans if s.kind is SpanKind.SERVER}
    (outbound,) = [s for s in spans if s.kind is SpanKind.CLIENT]
    upstream, downstream = servers["GET /relay/{item_id}"], servers["GET /items/{item_id}"]
    assert upstream.attributes is not None
    assert downstream.attributes is not None
    assert upstream.attributes["http.route"] == "/relay/{item_id}"
    assert downstream.attributes["http.response.status_code"] == 200
    # One trace: upstream's server span → (its endpoint) → its httpx call → downstream's.
    assert downstream.parent is not None
    assert downstream.parent.span_id == outbound.context.span_id
    assert upstream in ancestors(outbound, spans)
    assert len({s.context.trace_id for s in spans}) == 1
    assert upstream.resource.attributes["service.name"] == "upstream"
    # A request's log lines and its spans find each other: by request id, or by trace id.
    assert upstream.attributes["request_id"] == "traced-1"
    assert downstream.attributes["request_id"] == "traced-1"
    relayed = [json.loads(line) for line in access_lines.getvalue().splitlines()]
    (line,) = [line for line in relayed if line["route"] == "/relay/{item_id}"]
    assert line["request_id"] == "traced-1"
    assert line["trace_id"] == format(upstream.context.trace_id, "032x")
