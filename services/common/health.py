"""Health endpoints every service exposes: `/healthz` (alive) and `/readyz` (able to work)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import httpx
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.common.observability import propagate_async

ReadinessCheck = Callable[[], Awaitable[None]]
"""Returns when what it checks answers; raises, saying why, when it does not."""
PROBE_TIMEOUT_SECONDS = 2.0


def service_answers(name: str, base_url: str) -> ReadinessCheck:
    """A check that another service's `/healthz` answers 200 in time."""

    async def check() -> None:
        url = base_url.rstrip("/") + "/healthz"
        try:
            async with httpx.AsyncClient(
                timeout=PROBE_TIMEOUT_SECONDS,
                trust_env=False,
                event_hooks={"request": [propagate_async]},
            ) as client:
                response = await client.get(url)
        except httpx.HTTPError as exc:
            raise RuntimeError(f"the {name} at {base_url} does not answer ({exc!r})") from None
        if response.status_code != 200:
            raise RuntimeError(f"the {name} at {base_url} answered {response.status_code}")

    return check


def health_router(service: str, checks: Mapping[str, ReadinessCheck]) -> APIRouter:
    """`/healthz`: the process answers; `/readyz`: every check (its database, the services it
    calls) passes, each reported by name."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", operation_id="healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok", "service": service}

    @router.get("/readyz", operation_id="readyz", response_model=None)
    async def readyz() -> dict[str, object] | JSONResponse:
        """The service can do its work: its database and the services it calls answer."""
        outcomes = await asyncio.gather(
            *(check() for check in checks.values()), return_exceptions=True
        )
        found = {
            name: "ok" if outcome is None else str(outcome) or type(outcome).__name__
            for name, outcome in zip(checks, outcomes, strict=True)
        }
        failing = [f"{name}: {why}" for name, why in found.items() if why != "ok"]
        if failing:
            return JSONResponse(
                {
                    "status": "unavailable",
                    "service": service,
                    "reason": "; ".join(failing),
                    "checks": found,
                },
                status_code=503,
            )
        return {"status": "ready", "service": service, "checks": found}

    return router
