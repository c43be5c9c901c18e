"""What the run was measured on: CPU, cores, memory, Python, PostgreSQL and its durability."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from tests.support.postgres import PostgresServer


def _first(path: str, key: str) -> str:
    """The value of the first `key: value` line of a /proc file ('' if there is none)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == key:
            return value.strip()
    return ""


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: how busy the (shared) machine was."""
    try:
        return " ".join(Path("/proc/loadavg").read_text(encoding="ascii").split()[:3])
    except OSError:
        return "unknown"


def describe(server: PostgresServer) -> dict[str, str]:
    """The machine and database, as BENCHMARKS.md's header shows them."""
    memory_kib = _first("/proc/meminfo", "MemTotal").split()
    memory = f"{int(memory_kib[0]) / 1024 / 1024:.1f} GiB" if memory_kib else "unknown"
    with psycopg.connect(server.url(server.admin_database), autocommit=True) as conn:
        version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        settings = {
            name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
            for name in ("synchronous_commit", "fsync", "shared_buffers", "max_connections")
        }
    where = "unix socket" if server.host.startswith("/") else f"{server.host}:{server.port}"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": _first("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cores": str(os.cpu_count()),
        "memory": memory,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "PostgreSQL": f"{version} ({where}), "
        + ", ".join(f"{name}={value}" for name, value in settings.items()),
        "load average (1, 5, 15 min) at the start": load_average(),
    }
