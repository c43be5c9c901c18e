"""Prometheus metrics: each app's own registry, request counts and latency by route, /metrics.

Requests are labelled by the route template they matched (`/contracts/{contract_id}`), never
by the raw path, and by `unmatched` when no route matches, so no client can mint new series.
Services add their own metrics on the same registry; values that need a database read (a feed's
lag, a checkpoint's age) are refreshed by `on_scrape` callbacks just before each scrape.

/metrics is not authenticated: Prometheus scrapes it over the cluster network, and it tells
counts and timings per route, no record and no caller. Keep it off any public ingress.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.routing import RouteContext, iter_route_contexts
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.observability.request_id import current_request_id

UNMATCHED = "unmatched"
# Any other method (HTTP allows inventing them) is counted as "other": a bounded label.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "QUERY"}
)
# Probes and scrapes come every few seconds: logged at DEBUG, so INFO shows real traffic.
QUIET_ROUTES = frozenset({"/metrics", "/healthz", "/readyz"})
# Like nginx: the client left before any answer was started, so none was sent.
CLIENT_CLOSED = 499

ScrapeCallback = Callable[[], Awaitable[None]]
CollectFunction = Callable[[], Iterable[Metric]]
S = TypeVar("S", bound=ScrapeCallback)

access_logger = logging.getLogger("services.access")
logger = logging.getLogger("services.observability")


class _FunctionCollector:
    """A prometheus_client collector whose samples a function computes at each scrape."""

    def __init__(self, collect: CollectFunction) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        """The function's metrics, now."""
        return self._collect()


class Metrics:
    """One app's metrics registry, with HTTP request metrics and room for the service's own."""

    def __init__(self, service: str, *, scrape_timeout: float = 5.0) -> None:
        self.service = service
        # Not prometheus_client's global REGISTRY: several apps in one process (tests) would
        # collide on it, and an app's metrics are its own.
        self.registry = CollectorRegistry(target_info={"service": service})
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by method, matched route template and status",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by method and route",
            ("method", "route"),
            registry=self.registry,
        )
        self.scrape_errors = Counter(
            "metrics_scrape_callback_errors_total",
            "on_scrape callbacks that failed or timed out; their metrics kept older values",
            ("callback",),
            registry=self.registry,
        )
        self._scrape_timeout = scrape_timeout
        self._on_scrape: list[ScrapeCallback] = []

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        """A counter on this registry (`name` ends in `_total`)."""
        return Counter(name, documentation, labels, registry=self.registry)

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        """A gauge on this registry; `.set_function(f)` computes an unlabelled one at scrape."""
        return Gauge(name, documentation, labels, registry=self.registry)

    def histogram(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS,
    ) -> Histogram:
        """A histogram on this registry."""
        return Histogram(name, documentation, labels, registry=self.registry, buckets=buckets)

    def collector(self, collect: CollectFunction) -> CollectFunction:
        """Register a function yielding metric families (e.g. GaugeMetricFamily) at each scrape.

        The function runs synchronously in the scrape: for values already in memory.
        """
        self.registry.register(_FunctionCollector(collect))
        return collect

    def on_scrape(self, callback: S) -> S:
        """Register an async callback awaited before each scrape, to refresh gauges from I/O.

        A callback that fails or outlasts the scrape timeout is logged and counted, and the
        scrape goes on with the values it set last time.
        """
        self._on_scrape.append(callback)
        return callback

    async def refresh(self) -> None:
        """Await every on_scrape callback, one after the other."""
        for callback in list(self._on_scrape):
            name = getattr(callback, "__qualname__", repr(callback))
            try:
                await asyncio.wait_for(callback(), self._scrape_timeout)
            except Exception:
                self.scrape_errors.labels(callback=name).inc()
                logger.warning("metrics callback %s failed: values kept", name, exc_info=True)

    async def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition a scraper asked for (Accept), after refreshing; body and content type."""
        await self.refresh()
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        self.requests.labels(method=method, route=route, status=str(status)).inc()
        self.duration.labels(method=method, route=route).observe(seconds)


def metrics_router(metrics: Metrics) -> APIRouter:
    """GET /metrics: the Prometheus exposition; no authentication, left out of OpenAPI."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def scrape(request: Request) -> Response:
        """This service's metrics, in the text format or OpenMetrics as Accept asks."""
        body, content_type = await metrics.render(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    return router


def method_label(method: str) -> str:
    """The method, or "other" for one outside the standard set."""
    return method if method in KNOWN_METHODS else "other"


class RouteTemplates:
    """Names a request by the template of its route, as the app's OpenAPI document does.

    FastAPI puts the route it chose in the scope, but for a route of an included router that
    is the router's own route, without the prefixes it was included under; its route contexts
    have the full template. A request answered before routing (413 for a large body, an
    Idempotency-Key replay) has no route in its scope: matching the routes names it all the same.
    """

    def __init__(self, routes: Callable[[], Sequence[BaseRoute]]) -> None:
        self._routes = routes
        self._key: tuple[int, int] | None = None
        self._contexts: list[RouteContext] = []
        self._by_route: dict[int, list[RouteContext]] = {}

    def __call__(self, scope: Scope) -> str:
        """The template, e.g. `/contracts/{contract_id}`; "unmatched" when no route matches."""
        self.refresh()
        route = scope.get("route")
        if route is None:
            return self._match(scope, self._contexts)
        candidates = self._by_route.get(id(route), [])
        if len(candidates) == 1:
            return _template(candidates[0])
        if candidates:  # one router's route, included under two prefixes
            return self._match(scope, candidates)
        return _template(route)  # a route these routes do not list (a mounted app's own)

    def refresh(self) -> None:
        """Match the app's routes again if they changed (routers included since)."""
        routes = self._routes()
        key = (id(routes), len(routes))
        if key == self._key:
            return
        self._contexts = list(iter_route_contexts(routes))
        self._by_route = {}
        for context in self._contexts:
            self._by_route.setdefault(id(context.original_route), []).append(context)
        self._key = key

    @staticmethod
    def _match(scope: Scope, contexts: Iterable[RouteContext]) -> str:
        partial = None
        for context in contexts:
            match, _ = context.matches(scope)
            if match is Match.FULL:
                return _template(context)
            if match is Match.PARTIAL and partial is None:
                partial = context  # the path matched, the method did not: as the router answers 405
        return _template(partial) if partial is not None else UNMATCHED


def _template(route: object) -> str:
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) and template else UNMATCHED


class MetricsMiddleware:
    """Pure ASGI: counts and times each HTTP request by route, and logs one access line."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics | None,
        routes: Callable[[], Sequence[BaseRoute]] = tuple,
        access_log: bool = True,
        quiet_routes: Iterable[str] = QUIET_ROUTES,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self._route_of = RouteTemplates(routes)
        # The middleware is built as the app starts (its lifespan passes through it): matching
        # the routes costs a second or so, paid here rather than by the first request.
        self._route_of.refresh()
        self._access_log = access_log
        self._quiet = frozenset(quiet_routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, then record how it was answered."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None
        disconnected = False
        error: str | None = None

        async def receive_watching() -> Message:
            nonlocal disconnected
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = True
            return message

        async def send_watching(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive_watching, send_watching)
        except Exception as exc:
            error = type(exc).__name__
            raise
        finally:
            if status is None:
                # An exception before any answer becomes the server's 500; silence means the
                # client left (else the server answers 500 for an app that said nothing).
                status = CLIENT_CLOSED if disconnected and error is None else 500
            self._record(scope, status, time.perf_counter() - started, error)

    def _record(self, scope: Scope, status: int, seconds: float, error: str | None) -> None:
        method = method_label(scope["method"])
        route = self._route_of(scope)
        if self.metrics is not None:
            self.metrics.observe(method, route, status, seconds)
        if not self._access_log:
            return
        level = logging.DEBUG if route in self._quiet else logging.INFO
        if not access_logger.isEnabledFor(level):
            return
        fields: dict[str, Any] = {
            "method": method,
            "route": route,
            "path": scope["path"],
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
        }
        if error is not None:
            fields["error"] = error
        request_id = current_request_id()
        if request_id is not None:
            fields["request_id"] = request_id
        access_logger.log(
            level, "%s %s %d %.1fms", method, scope["path"], status, seconds * 1000, extra=fields
        )
