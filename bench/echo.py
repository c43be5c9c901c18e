"""Yardstick (a): a trivial FastAPI app on the services' server settings, echoing the JSON body.

`python -m bench.echo --port N` serves it as `services/common/serve.py` serves the services
(uvicorn, one process, no access log), on the same route shape as recording a delivery, and as
a sync endpoint as the ledger's are (FastAPI runs those in its thread pool). What it answers per
second is the ceiling of the HTTP stack itself: no auth, no database, no domain.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import typer
import uvicorn
from fastapi import Body, FastAPI

SERVICE = "echo"


def create_app() -> FastAPI:
    """The echo app: `POST /contracts/{id}/deliveries` answers 201 with the body it got."""
    app = FastAPI(title="bench echo")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "service": SERVICE}

    @app.post("/contracts/{contract_id}/deliveries", status_code=201)
    def echo(contract_id: UUID, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        return body

    return app


def main(port: Annotated[int, typer.Option(help="The loopback port to listen on")]) -> None:
    """Serve the echo app until SIGTERM, with the settings the services use."""
    uvicorn.run(
        create_app(),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    typer.run(main)
