"""CPU seconds and peak RSS of a process tree, from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """pid and all its descendants (that are alive now)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of the tree (threads included; reaped children's time too)."""
    total = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / TICK


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rss_mib(pid: int) -> tuple[float, float]:
    """(sum of VmHWM over the tree, largest single VmHWM), MiB."""
    values = [_status_kib(p, "VmHWM") for p in tree(pid)]
    return sum(values) / 1024, (max(values) if values else 0) / 1024


def rss_mib(pid: int) -> float:
    """Sum of VmRSS over the tree now, MiB."""
    return sum(_status_kib(p, "VmRSS") for p in tree(pid)) / 1024


class PeakSampler:
    """The highest summed RSS of a process tree, sampled from outside every ``interval`` s in a thread while it
    runs (``with PeakSampler(pid) as peak: ...; peak.mib``): what the machine had to give the server and its
    helpers at once — a sum of per-process peaks (VmHWM) adds maxima reached at different moments."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        import threading

        self.pid = pid
        self.interval = interval
        self.mib = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.mib = max(self.mib, rss_mib(self.pid))
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.mib = max(self.mib, rss_mib(self.pid))
