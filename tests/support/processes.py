"""The services as real OS processes on loopback ports, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = [
    "GRACEFUL_EXIT_CODE",
    "SERVICES",
    "SHUTDOWN_TIMEOUT_SECONDS",
    "STARTUP_TIMEOUT_SECONDS",
    "RunningService",
    "free_ports",
    "running_services",
    "service_env",
    "sqlite_url",
]

SERVICES: tuple[str, ...] = ("catalog", "ledger", "notifier")
STARTUP_TIMEOUT_SECONDS = 20.0
SHUTDOWN_TIMEOUT_SECONDS = 10.0
# uvicorn re-raises the SIGTERM it caught once its graceful shutdown is done, so a clean stop
# ends "terminated by SIGTERM" (Popen's -15), while a forced one ends -9 (SIGKILL).
GRACEFUL_EXIT_CODE = -signal.SIGTERM
LOG_TAIL_LINES = 40

_POLL_INTERVAL_SECONDS = 0.05
_HOST = "127.0.0.1"
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports nothing listens on right now, chosen by the kernel."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        # All stay bound until every port is read, so the kernel cannot hand out one twice.
        for sock in sockets:
            sock.bind((_HOST, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def sqlite_url(path: Path) -> str:
    """The database URL of a SQLite file, e.g. `sqlite:////tmp/x/ledger.sqlite3`."""
    return f"sqlite:///{path.resolve()}"


def service_env(
    name: str, port: int, database_url: str, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Our environment minus service settings, plus its port and database, then `overrides`."""
    prefixes = tuple(f"{service.upper()}_" for service in SERVICES)
    # A developer's exported LEDGER_DATABASE_URL etc. must never point a test at a real database.
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    prefix = name.upper()
    env |= {
        # Unbuffered, so the log file already holds the lines that explain a failed start.
        "PYTHONUNBUFFERED": "1",
        f"{prefix}_HOST": _HOST,
        f"{prefix}_PORT": str(port),
        f"{prefix}_DATABASE_URL": database_url,
    }
    env |= overrides or {}
    return env


@dataclass
class RunningService:
    """One service process; `restart` replaces `process` in place, keeping port, env and log."""

    name: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes]

    @classmethod
    def spawn(cls, name: str, env: Mapping[str, str], log_path: Path) -> RunningService:
        """Start `python -m services.<name>` without waiting for it to answer."""
        env = dict(env)
        return cls(name=name, env=env, log_path=log_path, process=_popen(name, env, log_path))

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.env[f"{self.name.upper()}_PORT"])

    @property
    def url(self) -> str:
        """Its base URL, e.g. http://127.0.0.1:54321."""
        return f"http://{_HOST}:{self.port}"

    @property
    def database_url(self) -> str:
        """The database it was configured with."""
        return self.env[f"{self.name.upper()}_DATABASE_URL"]

    @property
    def exit_code(self) -> int | None:
        """None while running; else the exit status, negative for a signal (-15 for SIGTERM)."""
        return self.process.poll()

    def wait_until_healthy(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        """Poll `/healthz` until this service answers 200; raise RuntimeError after `timeout`."""
        deadline = time.monotonic() + timeout
        # Loopback must never go through an HTTP proxy configured in the environment.
        with httpx.Client(base_url=self.url, timeout=1.0, trust_env=False) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(self._failure("stopped before answering /healthz"))
                if self._answers_healthz(client):
                    return
                if time.monotonic() >= deadline:
                    raise RuntimeError(
                        self._failure(f"did not answer /healthz within {timeout:.1f} s")
                    )
                time.sleep(_POLL_INTERVAL_SECONDS)

    def terminate(self) -> None:
        """Send SIGTERM if it still runs, without waiting."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT_SECONDS) -> int:
        """SIGTERM, wait up to `timeout`, then SIGKILL; return the exit code."""
        self.terminate()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def restart(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        """Stop if running, start again on the same port, database and log, wait until healthy."""
        self.stop()
        self.process = _popen(self.name, self.env, self.log_path)
        try:
            self.wait_until_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last `lines` lines of its log."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _answers_healthz(self, client: httpx.Client) -> bool:
        try:
            response = client.get("/healthz")
        except httpx.TransportError:
            return False
        if response.status_code != 200:
            return False
        try:
            body = response.json()
        except ValueError:
            return False
        # Another program that grabbed the port after free_ports() would not say this name.
        return isinstance(body, dict) and body.get("service") == self.name

    def _failure(self, what: str) -> str:
        running = self.process.poll() is None
        state = "still running" if running else f"exited with code {self.process.returncode}"
        return (
            f"{self.name} (pid {self.process.pid}, {self.url}) {what}; process {state}.\n"
            f"Last lines of {self.log_path}:\n{self.log_tail()}"
        )


def _popen(name: str, env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # Appending keeps the log of an earlier run of the same service across a restart.
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            env=dict(env),
            # `-m services.<name>` then imports this checkout, installed into the venv or not.
            cwd=_PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@contextmanager
def running_services(
    tmp_dir: Path,
    env_overrides: Mapping[str, str] | None = None,
    names: Sequence[str] = SERVICES,
    startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
) -> Iterator[dict[str, RunningService]]:
    """Start `names` healthy on SQLite in `tmp_dir`, `env_overrides` applied last; stop at exit."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    started: list[RunningService] = []
    try:
        ports = dict(zip(names, free_ports(len(names)), strict=True))
        # The ledger asks the catalog started beside it; the notifier follows both.
        urls = {name: f"http://{_HOST}:{port}" for name, port in ports.items()}
        wiring = {
            setting: urls[service]
            for setting, service in (
                ("LEDGER_CATALOG_URL", "catalog"),
                ("NOTIFIER_CATALOG_URL", "catalog"),
                ("NOTIFIER_LEDGER_URL", "ledger"),
            )
            if service in urls
        }
        for name, port in ports.items():
            database_url = sqlite_url(tmp_dir / f"{name}.sqlite3")
            env = service_env(name, port, database_url, {**wiring, **(env_overrides or {})})
            started.append(RunningService.spawn(name, env, tmp_dir / f"{name}.log"))
        # Spawned together, so they start in parallel and the waits overlap.
        deadline = time.monotonic() + startup_timeout
        for service in started:
            service.wait_until_healthy(max(deadline - time.monotonic(), 0.0))
        yield {service.name: service for service in started}
    finally:
        for service in started:
            service.terminate()
        for service in started:
            service.stop()
