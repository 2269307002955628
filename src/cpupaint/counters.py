"""Per-core utilisation as the system's own viewers count it, and which logical cores are SMT siblings.

Linux: ``/proc/stat`` (what htop and GNOME System Monitor read). Windows 8+: the "% Processor Utility" counter Task
Manager shows (see wincounters), when PDH offers it. Elsewhere, and as the fallback: psutil's per-core CPU times,
the idle/busy counters "% Processor Time" is computed from.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

PROC_STAT = Path("/proc/stat")
SYS_CPU = Path("/sys/devices/system/cpu")


@dataclass(frozen=True)
class CoreTimes:
    """Cumulative seconds one logical core spent busy and in total (busy + idle + iowait)."""

    busy: float
    total: float


def utilisation(before: CoreTimes, after: CoreTimes) -> float:
    """Percent busy between two readings; 0 when no time passed (a reading inside one clock tick)."""
    total = after.total - before.total
    if total <= 0:
        return 0.0
    return max(0.0, min(100.0, 100.0 * (after.busy - before.busy) / total))


def _clock_ticks() -> int:
    ticks = 100  # Linux's USER_HZ nearly everywhere; only /proc/stat uses it
    if sys.platform != "win32":
        with contextlib.suppress(ValueError, OSError):
            ticks = os.sysconf("SC_CLK_TCK")
    return ticks


_TICK_SECONDS = 1.0 / _clock_ticks()


def _parse_proc_stat(text: str) -> dict[int, CoreTimes]:
    cores: dict[int, CoreTimes] = {}
    for line in text.splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        name, *fields = line.split()
        # user nice system idle iowait irq softirq steal; guest time is already inside user and nice.
        values = [int(value) for value in fields[:8]]
        total = sum(values)
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        cores[int(name[3:])] = CoreTimes(busy=(total - idle) * _TICK_SECONDS, total=total * _TICK_SECONDS)
    return cores


def _psutil_times() -> dict[int, CoreTimes]:
    cores: dict[int, CoreTimes] = {}
    for index, times in enumerate(psutil.cpu_times(percpu=True)):
        total = sum(times)
        # guest/guest_nice (Linux only) are already counted in user/nice; iowait is idle time.
        total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
        idle = times.idle + getattr(times, "iowait", 0.0)
        cores[index] = CoreTimes(busy=total - idle, total=total)
    return cores


Reading = Callable[[], dict[int, CoreTimes]]


def _windows_utility(cores: list[int]) -> Reading | None:
    """Task Manager's own counter on Windows 8+, or None (other OS, older Windows, PDH missing)."""
    reading: Reading | None = None
    if sys.platform == "win32":
        from cpupaint import wincounters

        counter = wincounters.open_utility(cores)
        reading = counter.read if counter is not None else None
    return reading


_all_cores_utility: list[Reading | None] = []


def read_all() -> dict[int, CoreTimes]:
    """Cumulative times of every online logical core, keyed by core number."""
    if sys.platform.startswith("linux"):
        try:
            return _parse_proc_stat(PROC_STAT.read_text())
        except OSError:
            pass
    if sys.platform == "win32":
        if not _all_cores_utility:
            _all_cores_utility.append(_windows_utility(sorted(_psutil_times())))
        reading = _all_cores_utility[0]
        if reading is not None:
            return reading()
    return _psutil_times()


class CoreReader:
    """Reads one core's counters cheaply and often (a worker asks ten times a second)."""

    def __init__(self, core: int) -> None:
        self.core = core
        self._prefix = f"cpu{core} "
        self._utility = _windows_utility([core])

    def read(self) -> CoreTimes:
        if self._utility is not None:
            return self._utility()[self.core]
        if sys.platform.startswith("linux"):
            try:
                text = PROC_STAT.read_text()
            except OSError:
                return read_all()[self.core]
            for line in text.splitlines():
                if line.startswith(self._prefix):
                    return _parse_proc_stat(line)[self.core]
        return read_all()[self.core]


def online_cores() -> list[int]:
    """Logical core numbers the counters report, in order."""
    return sorted(read_all())


def usable_cores() -> list[int]:
    """Cores this process may run on (a container or taskset may allow fewer than exist)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return online_cores()


def _parse_cpu_list(text: str) -> list[int]:
    cores: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        cores.extend(range(int(first), int(last or first) + 1))
    return cores


def smt_siblings(cores: list[int]) -> dict[int, list[int]]:
    """For each core, the logical cores sharing its physical core (itself included).

    Linux reads the kernel's topology; elsewhere siblings are inferred from psutil's logical/physical counts,
    assuming (as Windows and macOS number them) that the threads of one physical core are adjacent.
    """
    siblings: dict[int, list[int]] = {}
    for core in cores:
        path = SYS_CPU / f"cpu{core}" / "topology" / "thread_siblings_list"
        try:
            siblings[core] = _parse_cpu_list(path.read_text())
        except (OSError, ValueError):
            break
    else:
        return siblings
    logical = psutil.cpu_count(logical=True) or len(cores)
    physical = psutil.cpu_count(logical=False) or logical
    per_core = max(1, math.ceil(logical / physical))
    return {core: list(range(core - core % per_core, core - core % per_core + per_core)) for core in cores}
