"""Starts the workers of a schedule, watches them, measures the run, and stops them all within a second.

Stopping never relies on the workers' good will alone: the pipe is closed (they stop at once), then whatever
still lives after the grace time is killed and reaped. When this process itself dies, the closed pipe stops them.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cpupaint import counters
from cpupaint.counters import CoreTimes
from cpupaint.schedule import Schedule

# Time for the workers' interpreters to start before the first tick is due.
STARTUP_LEAD = 0.4
STOP_GRACE = 0.8
POLL_INTERVAL = 0.05
SETTLE_SECONDS = 2.0


@dataclass
class StopRequest:
    """Set from a signal handler: a plain attribute, because handlers must not take locks the loop may hold."""

    reason: str | None = None

    def request(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason


@dataclass
class Outcome:
    """How a run ended and each core's mean utilisation over it (after the settle time when it lasted that long)."""

    stopped_by: str | None = None
    failure: str | None = None
    measured: dict[int, float] = field(default_factory=dict)
    seconds_measured: float = 0.0


@dataclass
class Worker:
    core: int
    process: subprocess.Popen[bytes]


def settle_time(duration: float) -> float:
    """The first seconds are left out of the measurement: workers start, the loop finds its duty."""
    return min(SETTLE_SECONDS, duration / 2)


def spawn(core: int) -> Worker:
    process = subprocess.Popen(
        [sys.executable, "-m", "cpupaint.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    return Worker(core, process)


def stop_all(workers: list[Worker]) -> None:
    """Close every pipe (workers stop within a period), then kill what is left after the grace time."""
    for worker in workers:
        stdin = worker.process.stdin
        if stdin is not None:
            # A broken pipe means the worker is already gone: nothing left to tell it.
            with contextlib.suppress(OSError):
                stdin.close()
    deadline = time.monotonic() + STOP_GRACE
    for worker in workers:
        try:
            worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()


@dataclass
class Run:
    """One painting: the schedule, its workers and the counters read at the start, settle and end."""

    schedule: Schedule
    closed_loop: bool = True
    pin: bool = True
    workers: list[Worker] = field(default_factory=list)

    def start(self) -> float:
        """Spawn one worker per core and hand each its row; returns the Unix time painting begins."""
        self.workers = [spawn(core) for core in self.schedule.cores]
        begin = self.schedule.start_time(time.time(), STARTUP_LEAD)
        for index, worker in enumerate(self.workers):
            line = self.schedule.for_core(index, begin, self.closed_loop, self.pin).to_json() + "\n"
            assert worker.process.stdin is not None
            worker.process.stdin.write(line.encode())
            worker.process.stdin.flush()
        return begin

    def _failed_worker(self) -> str | None:
        for worker in self.workers:
            code = worker.process.poll()
            if code is not None and code != 0:
                return f"the worker of core {worker.core} exited with code {code}"
        return None

    def supervise(self, begin: float, stop: StopRequest) -> Outcome:
        """Wait for the end of the schedule, a stop request or a failed worker; measure the cores meanwhile."""
        outcome = Outcome()
        end = begin + self.schedule.duration
        settle_at = begin + settle_time(self.schedule.duration)
        first: dict[int, CoreTimes] | None = None
        first_at = 0.0
        while True:
            now = time.time()
            if first is None and now >= begin:
                first, first_at = counters.read_all(), now
            if first is not None and first_at < settle_at <= now:
                first, first_at = counters.read_all(), now
            if now >= end or stop.reason is not None:
                break
            outcome.failure = self._failed_worker()
            if outcome.failure:
                break
            time.sleep(min(POLL_INTERVAL, max(0.0, end - now)))
        outcome.stopped_by = stop.reason
        if first is not None:
            last = counters.read_all()
            outcome.seconds_measured = time.time() - first_at
            outcome.measured = {core: counters.utilisation(first[core], last[core]) for core in self.schedule.cores}
        return outcome


def paint(
    schedule: Schedule,
    stop: StopRequest,
    closed_loop: bool = True,
    pin: bool = True,
    on_started: Callable[[list[tuple[int, int]], float], None] | None = None,
) -> Outcome:
    """Run ``schedule`` to its end (or a stop); every worker is gone when this returns, whatever happened."""
    run = Run(schedule, closed_loop, pin)
    try:
        begin = run.start()
        if on_started is not None:
            on_started([(worker.core, worker.process.pid) for worker in run.workers], begin)
        return run.supervise(begin, stop)
    except OSError as error:
        return Outcome(failure=f"cannot run the workers: {error}")
    finally:
        stop_all(run.workers)
