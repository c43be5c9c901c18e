"""Each service's memory through the run: RSS sampled from /proc, peaks, and growth by phase."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

_SAMPLE_SECONDS = 0.25


def _status_kib(pid: int, key: str) -> int | None:
    """A `VmRSS:`/`VmHWM:` line of /proc/<pid>/status in KiB; None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


@dataclass
class Watched:
    """One service (by label, e.g. `ledger`) and what was seen of its memory, in KiB."""

    label: str
    pid: int
    peak_kib: int = 0
    last_kib: int = 0
    # phase -> (RSS when the phase began, RSS when it ended, the highest sample during it)
    phases: dict[str, list[int]] = field(default_factory=dict)


class MemoryMonitor:
    """Samples every watched process's RSS four times a second, in a thread, until closed."""

    def __init__(self) -> None:
        self.watched: dict[str, Watched] = {}
        self.phase = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-memory", daemon=True)
        self._thread.start()

    def watch(self, label: str, pid: int) -> None:
        """Follow `pid` under `label` (a restarted service keeps its label, and its peak)."""
        with self._lock:
            known = self.watched.get(label)
            if known is None:
                self.watched[label] = Watched(label, pid)
            else:
                known.pid = pid
        self.sample()

    def begin(self, phase: str) -> None:
        """Mark the start of a phase: what each service holds now is its starting figure."""
        self.sample()
        with self._lock:
            self.phase = phase
            for watched in self.watched.values():
                # A service already stopped takes no part in the phases that follow.
                if Path(f"/proc/{watched.pid}").exists():
                    watched.phases[phase] = [watched.last_kib] * 3

    def sample(self) -> None:
        """Read every watched process once."""
        with self._lock:
            for watched in self.watched.values():
                rss = _status_kib(watched.pid, "VmRSS")
                if rss is None:
                    continue
                # The kernel's own high-water mark catches peaks between two samples.
                hwm = _status_kib(watched.pid, "VmHWM") or rss
                watched.last_kib = rss
                watched.peak_kib = max(watched.peak_kib, hwm)
                figures = watched.phases.get(self.phase)
                if figures is None:
                    watched.phases[self.phase] = figures = [rss] * 3
                figures[1] = rss
                figures[2] = max(figures[2], rss)

    def _loop(self) -> None:
        while not self._stop.wait(_SAMPLE_SECONDS):
            self.sample()

    def close(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join(timeout=5)
