"""Runs a service's app with uvicorn, logging to the terminal."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from services.common.settings import ServiceSettings


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Serve until SIGINT or SIGTERM, then finish in-flight requests and stop."""
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )
