"""Starting the three services for the demo, each as its own process, and stopping them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from services.catalog.settings import CatalogSettings
from services.ledger.settings import LedgerSettings
from services.notifier.settings import NotifierSettings

STARTUP_SECONDS = 60.0


def urls() -> dict[str, str]:
    """Each service's base URL, from the same settings the services read."""
    found = {}
    for name, settings in (
        ("catalog", CatalogSettings()),
        ("ledger", LedgerSettings()),
        ("notifier", NotifierSettings()),
    ):
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
        found[name] = f"http://{host}:{settings.port}"
    return found


def _answers(url: str, path: str) -> bool:
    try:
        return httpx.get(url + path, timeout=1.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def running(logs: Path, overrides: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """The three services started and ready; stopped (SIGTERM, then waited for) at the end."""
    where = urls()
    busy = [f"{name} ({url})" for name, url in where.items() if _answers(url, "/healthz")]
    if busy:
        raise SystemExit(
            f"something already answers as {', '.join(busy)}: stop it (is `make run` going?), "
            "or set CATALOG_PORT, LEDGER_PORT and NOTIFIER_PORT to free ports"
        )
    logs.mkdir(parents=True, exist_ok=True)
    environment = {
        **os.environ,
        **overrides,
        "PYTHONUNBUFFERED": "1",
        "LEDGER_CATALOG_URL": where["catalog"],
        "NOTIFIER_LEDGER_URL": where["ledger"],
        "NOTIFIER_CATALOG_URL": where["catalog"],
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name in where:
            with (logs / f"{name}.log").open("ab") as log:
                processes.append(
                    subprocess.Popen(  # noqa: S603  (this interpreter, fixed arguments)
                        [sys.executable, "-m", f"services.{name}"],
                        env=environment,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + STARTUP_SECONDS
        for (name, url), process in zip(where.items(), processes, strict=True):
            while not _answers(url, "/readyz"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the {name} did not start: see {logs / f'{name}.log'}")
                time.sleep(0.1)
        yield where
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
