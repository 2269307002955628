"""Running the real ``cpupaint`` command in a subprocess and reading /proc/stat independently of it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import psutil

COMMAND = [sys.executable, "-m", "cpupaint"]
PIDS = re.compile(r"worker pids: ([\d ]+)")
BEGIN = re.compile(r"\(unix ([\d.]+);")


def proc_stat() -> dict[int, tuple[int, int]]:
    """(busy, total) clock ticks per core, parsed here without cpupaint's code so that the test checks it."""
    cores = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name != "cpu":
            values = [int(value) for value in fields[:8]]
            idle = values[3] + values[4]
            cores[int(name[3:])] = (sum(values) - idle, sum(values))
    return cores


def percent_between(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]], core: int) -> float:
    busy = after[core][0] - before[core][0]
    total = after[core][1] - before[core][1]
    return 100.0 * busy / total if total else 0.0


def start(*arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*COMMAND, *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def worker_pids(process: subprocess.Popen[str], timeout: float = 20.0) -> list[int]:
    """The pids cpupaint announces on stderr once its workers run."""
    return announcement(process, timeout)[0]


def announcement(process: subprocess.Popen[str], timeout: float = 20.0) -> tuple[list[int], float]:
    """The worker pids and the Unix time painting begins, as cpupaint announces them on stderr."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        match = PIDS.search(line)
        begin = BEGIN.search(line)
        if match and begin:
            return [int(pid) for pid in match.group(1).split()], float(begin.group(1))
    raise AssertionError(f"no worker pids announced; stderr so far: {''.join(seen)!r}")


def alive(pid: int) -> bool:
    """A zombie waiting for a reaper counts as gone: it runs no code and holds no core."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_all_gone(pids: list[int], timeout: float) -> list[int]:
    """Pids still alive after ``timeout`` seconds (polled every 20 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(pid) for pid in pids):
            return []
        time.sleep(0.02)
    return [pid for pid in pids if alive(pid)]
