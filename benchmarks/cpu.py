"""CPU time of the processes in a benchmark cell, read from /proc (Linux only).

On the 2-core machine the server, PostgreSQL and the load generator share the cores. Each
one's CPU time divided by the cell's commands says what a command costs it, and which of
them a figure is bound by: a server near one core of CPU per second of wall time is held by
its interpreter lock, whatever the machine has left.
"""

import os
import time
from pathlib import Path

_PROC = Path("/proc")
_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def available() -> bool:
    return (_PROC / "self" / "stat").exists()


def process_cpu_s(pid: int, *, with_children: bool = False) -> float:
    """User and system CPU of one process (all its threads), optionally with its reaped
    children's: PostgreSQL's postmaster collects the time of every backend that exited."""
    fields = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICKS_PER_S


def children(pid: int) -> list[int]:
    """The live processes whose parent is pid (an adapter's forked workers)."""
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended between the listing and the read
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def postgres_cpu_s() -> float:
    """CPU of every PostgreSQL process, including backends that have already exited."""
    total = 0.0
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                total += process_cpu_s(int(entry.name), with_children=True)
        except OSError:  # the process ended between the listing and the read
            continue
    return total


class CpuMeter:
    """CPU spent by the servers, this process (the load) and PostgreSQL during a block."""

    def __init__(self, server_pids: list[int]) -> None:
        self.server_pids = server_pids
        self.spent: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        return {
            "server": sum(process_cpu_s(pid) for pid in self.server_pids),
            "load": time.process_time(),
            "postgres": postgres_cpu_s(),
        }

    def __enter__(self) -> "CpuMeter":
        self._start = self._now() if available() else {}
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._start:
            end = self._now()
            self.spent = {name: end[name] - self._start[name] for name in end}

    def per_command_us(self, commands: int) -> dict[str, int] | None:
        """Microseconds of CPU per command for each party; None without /proc."""
        if not self.spent or commands == 0:
            return None
        return {name: round(s / commands * 1e6) for name, s in self.spent.items()}
