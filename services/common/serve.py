"""Runs a service's app with uvicorn, logging to the terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from services.common.collector import freeze_once_started
from services.common.observability import configure_logging
from services.common.settings import ConfigurationRefused, ServiceSettings


def serve(service: str, build: Callable[[], FastAPI], settings: ServiceSettings) -> None:
    """Build the app and serve until SIGINT or SIGTERM, then finish in-flight requests and stop.

    Logs go to stdout (JSON lines unless *_LOG_FORMAT=text) from before the app is built, so
    its warnings are in them too. Settings the service refuses end the process with the
    reason, and status 1.
    """
    configure_logging(service, settings.log_level, json=settings.log_format == "json")
    try:
        app = build()
    except ConfigurationRefused as refused:
        sys.exit(f"refusing to start: {refused}")
    freeze_once_started(app)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Ours: configure_logging above, and one access line per request with its route and id.
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
