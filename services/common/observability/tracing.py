"""OpenTelemetry traces, sent only where an exporter is configured, by the standard variables.

With `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans go by
OTLP over HTTP (protobuf) through a batching processor, and the rest of the standard
`OTEL_*` variables apply (headers, timeouts, `OTEL_BSP_*`, `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`). Without them nothing is set up and the SDK is never imported.

FastAPI (from 0.16x) traces its own requests once a global tracer provider exists: a server
span per request named for its route (`GET /contracts/{contract_id}`), with spans for the
dependencies, the endpoint and serialization inside it. So this module sets that provider and
instruments httpx, whose client spans carry the W3C `traceparent` to the service called; it
does not add opentelemetry-instrumentation-fastapi, which FastAPI treats as legacy (its
middleware, when present, turns FastAPI's own tracing off).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from fastapi import FastAPI

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
logger = logging.getLogger("services.observability")


def tracing_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for traces: an OTLP endpoint, and the SDK not disabled."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(env.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def configure_tracing(app: FastAPI, service: str, *, exporter: SpanExporter | None = None) -> bool:
    """Trace the app's requests and its httpx calls if an exporter is configured; whether so.

    `exporter` replaces the OTLP exporter (tests pass an in-memory one); the environment still
    decides whether tracing is on at all.
    """
    if not tracing_configured():
        return False
    # Imported here: a service without an exporter never loads the SDK.
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        # Traces are an aid, not a duty: a service without the SDK installed still serves.
        logger.warning("an OTLP endpoint is set, but traces are off: %s", exc)
        return False
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if exporter is None and protocol.strip() != "http/protobuf":
        logger.warning("OTLP protocol %r is not supported; spans go as http/protobuf", protocol)

    current = trace.get_tracer_provider()
    provider: TracerProvider
    if isinstance(current, TracerProvider):
        # The global provider is set once per process: a second app in it (tests) shares it.
        provider = current
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
    else:
        if exporter is None:
            exporter = OTLPSpanExporter()  # its endpoint, headers and timeout from OTEL_*
        name = os.environ.get("OTEL_SERVICE_NAME", "").strip() or service
        # Flushed and shut down at exit (shutdown_on_exit), after uvicorn has drained requests.
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        # Every httpx client in the process, made before or after: the catalog reader, the
        # feed followers, and webhook deliveries (whose receivers then see a traceparent).
        instrumentor.instrument(tracer_provider=provider)
    app.state.tracer_provider = provider
    logger.info("traces of %s are exported (OpenTelemetry, OTLP over HTTP)", service)
    return True
