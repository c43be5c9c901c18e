"""Observability for every service: request ids, JSON logs, Prometheus metrics, optional traces.

`install_observability(app, service)` wires an app; `configure_logging(service, level)` sets up
the process's logs before the app is built. The modules also stand alone.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI
from starlette.types import ASGIApp

from services.common.observability.logs import configure_logging
from services.common.observability.metrics import (
    QUIET_ROUTES,
    Metrics,
    MetricsMiddleware,
    metrics_router,
)
from services.common.observability.request_id import (
    RequestIdMiddleware,
    bound_request_id,
    current_request_id,
    propagate,
    propagate_async,
    propagate_from,
    request_id_headers,
)
from services.common.observability.tracing import configure_tracing

__all__ = [
    "Metrics",
    "bound_request_id",
    "configure_logging",
    "configure_tracing",
    "current_request_id",
    "install_observability",
    "propagate",
    "propagate_async",
    "propagate_from",
    "request_id_headers",
]


def install_observability(
    app: FastAPI,
    service: str,
    *,
    access_log: bool = True,
    quiet_routes: Iterable[str] = QUIET_ROUTES,
    tracing: bool = True,
) -> Metrics:
    """Request ids, request metrics and access logs, /metrics, and traces if configured.

    Call it after every other `add_middleware` (after `guard_requests`), so that what it adds
    runs first: the metrics see every answer, a 413 or a replay included. The request id wraps
    even FastAPI's own error handling, so a 500 carries its X-Request-ID too. The app's
    `Metrics` is returned and kept as `app.state.metrics`. Access lines for `quiet_routes`
    (probes and scrapes) are logged at DEBUG.
    """
    if getattr(app.state, "metrics", None) is not None:
        raise RuntimeError("observability is already installed on this app")
    metrics = Metrics(service)
    app.state.metrics = metrics
    app.include_router(metrics_router(metrics))
    app.add_middleware(
        MetricsMiddleware,
        metrics=metrics,
        # Read when a request needs it, so routes included later are matched too.
        routes=lambda: app.router.routes,
        access_log=access_log,
        quiet_routes=quiet_routes,
    )
    build = app.build_middleware_stack

    def build_with_request_id() -> ASGIApp:
        # Outside ServerErrorMiddleware, which add_middleware cannot reach: the 500 it sends
        # for an unhandled exception goes through here and is given the id as well.
        return RequestIdMiddleware(build())

    app.build_middleware_stack = build_with_request_id  # type: ignore[method-assign]
    if tracing:
        configure_tracing(app, service)
    return metrics
