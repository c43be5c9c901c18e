"""Health endpoints every service exposes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

ReadinessCheck = Callable[[], Awaitable[None]]


def health_router(service: str, ready: ReadinessCheck) -> APIRouter:
    """`/healthz`: the process answers; `/readyz`: its database answers too."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", operation_id="healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok", "service": service}

    @router.get("/readyz", operation_id="readyz", response_model=None)
    async def readyz() -> dict[str, str] | JSONResponse:
        """The service can do its work: its database answers."""
        try:
            await ready()
        except Exception as exc:  # any failure means "not ready", and says why
            return JSONResponse(
                {"status": "unavailable", "service": service, "reason": str(exc)},
                status_code=503,
            )
        return {"status": "ready", "service": service}

    return router
