"""What the deployment tests share: deploy/'s files, and running a health probe for real."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings

from services.catalog.settings import CatalogSettings
from services.common.auth import AuthSettings
from services.ledger.settings import LedgerSettings
from services.notifier.settings import NotifierSettings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = PROJECT_ROOT / "deploy"
IMAGE = "community-ledger:0.1.0"
UID = 10001
# Whose settings a variable is, by its prefix: the services' own, and the shared AUTH_ ones.
SETTINGS: dict[str, type[BaseSettings]] = {
    "AUTH_": AuthSettings,
    "CATALOG_": CatalogSettings,
    "LEDGER_": LedgerSettings,
    "NOTIFIER_": NotifierSettings,
}


def is_setting(variable: str) -> bool:
    """Whether a service reads this variable (or secret file name): settings ignore the rest."""
    for prefix, settings in SETTINGS.items():
        if variable.upper().startswith(prefix):
            return variable[len(prefix) :].lower() in settings.model_fields
    return False


def load_yaml(path: Path) -> Any:
    """The one YAML document in a file."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_documents(path: Path) -> list[Any]:
    """Every non-empty YAML document in a file, in order."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


@dataclass
class StubServer:
    """An HTTP server on loopback answering every GET with one status, noting the paths asked."""

    port: int
    paths: list[str] = field(default_factory=list)


@contextmanager
def stub_server(status: int) -> Iterator[StubServer]:
    """Serve `status` on an ephemeral loopback port until the block ends."""
    stub = StubServer(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            stub.paths.append(self.path)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def run_probe(command: list[str], port: int) -> int:
    """Run a container health probe (exec form, `python -c …`) against a port on loopback.

    The probe is run as written but for its port (8000 in a container); a dead proxy is named
    in the environment, which the probe must not go through.
    """
    assert command[:2] == ["python", "-c"], command
    code = command[2]
    assert ":8000/" in code, code
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(HTTP_PROXY="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9")
    result = subprocess.run(
        [sys.executable, "-c", code.replace(":8000/", f":{port}/")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode
