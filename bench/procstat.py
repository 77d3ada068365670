"""CPU time of the processes under test, read from /proc."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")


def cpu_ms(pid: int) -> float:
    """User + system CPU time of one process, in milliseconds (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) * TICK_MS  # utime, stime


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def pids_where(pred: Callable[[int], bool]) -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and pred(int(p))]


def ejabberd_pids(node: str = "orgchat@localhost") -> list[int]:
    return pids_where(lambda p: _comm(p) == "beam.smp" and node in _cmdline(p))


def postgres_pids() -> list[int]:
    return pids_where(lambda p: _comm(p).startswith("postgres"))


def redis_pids() -> list[int]:
    return pids_where(lambda p: _comm(p) == "redis-server")


class CpuMeter:
    """CPU milliseconds used by named groups of processes between two readings.

    A process that exits before :meth:`stop` counts up to the last
    :meth:`sample` that saw it (not at all without one).
    """

    def __init__(self, groups: Mapping[str, Callable[[], Iterable[int]]]) -> None:
        self.groups = groups
        self._start: dict[str, dict[int, float]] = {}
        self._last: dict[str, dict[int, float]] = {}

    def start(self) -> None:
        self._start = {name: {p: cpu_ms(p) for p in find()} for name, find in self.groups.items()}
        self._last = {name: {} for name in self.groups}

    def sample(self) -> None:
        """Read every process of every group now (call it often while they come and go)."""
        for name, find in self.groups.items():
            last = self._last.setdefault(name, {})
            for pid in find():
                if now := cpu_ms(pid):
                    last[pid] = now

    def stop(self) -> dict[str, float]:
        used: dict[str, float] = {}
        for name, find in self.groups.items():
            before = self._start.get(name, {})
            last = self._last.get(name, {})
            total = 0.0
            for pid in set(find()) | set(before) | set(last):
                now = cpu_ms(pid) or last.get(pid, 0.0)
                if now:  # a process that exited unseen is not counted
                    total += now - before.get(pid, 0.0)  # a new one counts from zero
            used[name] = total
        return used
