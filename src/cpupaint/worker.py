"""One worker process per painted core: pinned to its core, it alternates spinning and sleeping in short periods.

Run as ``python -m cpupaint.worker``; its schedule arrives as one JSON line on stdin. The parent keeps that pipe
open for the whole run, so end-of-file on stdin means the parent is gone or wants the worker to stop — the kernel
closes the pipe even when the parent is killed with SIGKILL, on every OS, which makes it the orphan guard.
A change of ``os.getppid()`` is checked every period as a second guard.

Closed loop: within each tick of the wall clock (the viewer's refresh), the worker reads the SYSTEM-WIDE busy time
of its core, subtracts its own CPU time to learn how busy everything else keeps the core, and sets the duty of the
next period so that the whole tick ends at the target. Load from other processes is thereby subtracted, and
whatever the counter makes of frequency changes or accounting quirks is corrected by the same feedback.
Open loop (for comparison only): the duty is the target, as a hand-tuned busy/sleep loop would do.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

import psutil

from cpupaint.counters import CoreReader, CoreTimes
from cpupaint.schedule import CoreSchedule

EXIT_FAILED = 1


AFFINITY_NOTE = "macOS offers no CPU affinity: one worker per target core, spread over the cores by the scheduler"


def can_pin() -> bool:
    """Linux has sched_setaffinity, Windows and the BSDs psutil's cpu_affinity; macOS has neither."""
    return hasattr(os, "sched_setaffinity") or hasattr(psutil.Process, "cpu_affinity")


def pin_to_core(core: int) -> None:
    """Run this process on ``core`` only."""
    if sys.platform.startswith("linux"):
        os.sched_setaffinity(0, {core})
    elif sys.platform != "darwin":
        psutil.Process().cpu_affinity([core])


@dataclass
class Window:
    """The current tick of the wall clock and the counters at its beginning."""

    start: float
    end: float
    core_at_start: CoreTimes
    own_at_start: float


class ClosedLoop:
    """Duty for the next period from the measured busy time of the core so far in this tick."""

    def __init__(self, reader: Callable[[], CoreTimes], own_cpu: Callable[[], float] = time.process_time) -> None:
        self.reader = reader
        self.own_cpu = own_cpu
        self.window: Window | None = None
        # Other processes' load over the previous tick: the forecast for the start of the next one.
        self.previous_other = 0.0
        self.previous_span = 0.0

    def begin(self, start: float, end: float) -> None:
        if self.window is not None:
            self._remember_other(start)
        self.window = Window(start, end, self.reader(), self.own_cpu())

    def _remember_other(self, now: float) -> None:
        assert self.window is not None
        busy, own = self._measure()
        self.previous_other = max(0.0, busy - own)
        self.previous_span = max(0.0, now - self.window.start)

    def _measure(self) -> tuple[float, float]:
        assert self.window is not None
        core = self.reader()
        return core.busy - self.window.core_at_start.busy, self.own_cpu() - self.window.own_at_start

    def duty(self, now: float, target: float) -> float:
        assert self.window is not None
        remaining = self.window.end - now
        if remaining <= 0:
            return 0.0
        busy, own = self._measure()
        elapsed = max(0.0, now - self.window.start)
        other = max(0.0, busy - own)
        span = self.previous_span + elapsed
        other_rate = min(1.0, (self.previous_other + other) / span) if span > 0 else 0.0
        wanted = target / 100.0 * (self.window.end - self.window.start)
        needed_from_me = wanted - busy - other_rate * remaining
        return max(0.0, min(1.0, needed_from_me / remaining))


def spin_until(deadline: float, stop: threading.Event) -> None:
    """Burn CPU until ``deadline`` (perf_counter). The stop flag is looked at so that a stop is never late."""
    counter = 0
    while time.perf_counter() < deadline:
        counter += 1
        if counter % 4096 == 0 and stop.is_set():
            return


def next_boundary(now: float, tick: float) -> float:
    return (math.floor(now / tick) + 1) * tick


def run(schedule: CoreSchedule, stop: threading.Event, parent: int) -> None:
    """Paint ``schedule`` until its end, a stop, or the parent's death."""
    if stop.wait(max(0.0, schedule.start - time.time())):
        return
    loop = ClosedLoop(CoreReader(schedule.core).read)
    window_end = 0.0
    while not stop.is_set() and os.getppid() == parent:
        now = time.time()
        if now >= schedule.end:
            return
        if now >= window_end:
            # Windows follow the wall clock's tick boundaries: the viewer's graph advances on them.
            window_end = min(schedule.end, next_boundary(now, schedule.tick))
            loop.begin(now, window_end)
        target = schedule.level_at((now + window_end) / 2)
        duty = loop.duty(now, target) if schedule.closed_loop else target / 100.0
        length = min(schedule.period, window_end - now)
        started = time.perf_counter()
        spin_until(started + duty * length, stop)
        stop.wait(max(0.0, started + length - time.perf_counter()))


def _watch_stdin(stop: threading.Event) -> None:
    """Block on the parent's pipe; its end (parent stopped us, exited or was killed) stops the worker."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        stop.set()


def main() -> int:
    parent = os.getppid()
    stop = threading.Event()

    def on_signal(_number: int, _frame: FrameType | None) -> None:
        # Unwind rather than stop.set(): a handler runs in the main thread, possibly while that thread holds the
        # event's internal lock inside stop.wait(), and set() would then wait for it forever.
        raise SystemExit(0)

    # Ctrl-C in a terminal reaches the whole process group: the worker just stops, quietly, like the parent.
    for name in ("SIGTERM", "SIGINT", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), on_signal)
    line = sys.stdin.buffer.readline()
    if not line or stop.is_set():
        return 0
    schedule = CoreSchedule.from_json(line.decode())
    threading.Thread(target=_watch_stdin, args=(stop,), daemon=True, name="parent-pipe").start()
    if schedule.pin and can_pin():
        try:
            pin_to_core(schedule.core)
        except (OSError, ValueError, psutil.Error) as error:
            print(f"cpupaint: error: cannot pin a worker to core {schedule.core}: {error}", file=sys.stderr)
            return EXIT_FAILED
    run(schedule, stop, parent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
