"""How close does cpupaint hold a core to its target, second by second, as /proc/stat counts it?

For each target (default 10, 30, 50, 70, 90 %) every core is held at the target, once with the closed loop and once
with an open-loop duty cycle (spin target % of each 100 ms period, like a hand-tuned busy/sleep loop), first on the
machine as it is, then with another process keeping core 0 busy at --background % (an open-loop spinner pinned
there). Per-core utilisation is read from /proc/stat at every wall-clock second boundary after a settle time; the
mean absolute error (percentage points) per case is printed, plus the MAE over reachable samples only: seconds in
which everybody else's load on the core (measured minus the worker's own CPU time) stayed at or below the target.
A core that other load keeps above the target cannot be brought down by any painter, and on a shared machine
other people's jobs come and go.

    python benchmarks/cpupaint_accuracy.py --targets 10,30,50,70,90 --seconds 5

Linux only (reads /proc/stat). Takes about targets × 2 × 2 × (seconds + settle + 1) seconds.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import psutil

from cpupaint import counters, runner, schedule
from cpupaint.runner import StopRequest
from cpupaint.schedule import CoreSchedule


@dataclass
class Errors:
    all: list[float] = field(default_factory=list)
    reachable: list[float] = field(default_factory=list)

    @staticmethod
    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else math.nan


def start_background(core: int, percent: float, seconds: float) -> subprocess.Popen[bytes]:
    """Another process: cpupaint's worker in open-loop mode, pinned to ``core``, not controlled by the run."""
    now = time.time()
    plan = CoreSchedule(core=core, start=now, tick=1.0, levels=[percent], end=now + seconds, closed_loop=False)
    process = subprocess.Popen([sys.executable, "-m", "cpupaint.worker"], stdin=subprocess.PIPE)
    assert process.stdin is not None
    process.stdin.write((plan.to_json() + "\n").encode())
    process.stdin.flush()
    return process


@dataclass
class Sample:
    """One core during one wall-clock second: its utilisation and how much of it was the worker's own CPU time."""

    measured: float
    own: float

    def other(self) -> float:
        return max(0.0, self.measured - self.own)


def _own_seconds(processes: dict[int, psutil.Process]) -> dict[int, float]:
    seconds = {}
    for core, process in processes.items():
        try:
            times = process.cpu_times()
            seconds[core] = times.user + times.system
        except psutil.NoSuchProcess:
            seconds[core] = 0.0
    return seconds


def measure_case(cores: list[int], target: float, closed: bool, seconds: int, settle: float) -> dict[int, list[Sample]]:
    """Per-core samples of each whole wall-clock second after the settle time."""
    plan = schedule.constant(cores, [target] * len(cores), settle + seconds + 1.0)
    began: list[float] = []
    processes: dict[int, psutil.Process] = {}
    ready = threading.Event()

    def started(workers: list[tuple[int, int]], begin: float) -> None:
        processes.update({core: psutil.Process(pid) for core, pid in workers})
        began.append(begin)
        ready.set()

    thread = threading.Thread(target=runner.paint, args=(plan, StopRequest(), closed, True, started))
    thread.start()
    ready.wait(30)
    first = math.ceil(began[0] + settle)
    samples: dict[int, list[Sample]] = {core: [] for core in cores}
    time.sleep(max(0.0, first - time.time()))
    previous, previous_own, previous_clock = counters.read_all(), _own_seconds(processes), time.monotonic()
    for second in range(1, seconds + 1):
        time.sleep(max(0.0, first + second - time.time()))
        now, own, clock = counters.read_all(), _own_seconds(processes), time.monotonic()
        for core in cores:
            share = 100.0 * (own[core] - previous_own[core]) / (clock - previous_clock)
            samples[core].append(Sample(counters.utilisation(previous[core], now[core]), share))
        previous, previous_own, previous_clock = now, own, clock
    thread.join(30)
    return samples


def run(targets: list[float], seconds: int, settle: float, background: float) -> None:
    cores = counters.usable_cores()
    print(f"cores {cores}; {seconds} one-second samples per core and case after {settle:g} s settle")
    print(f"{'load':>10} {'target':>6} {'loop':>6}  measured/own per core      MAE  reachable-MAE")
    summary: dict[tuple[str, str], Errors] = {}
    for load in ("none", f"core0@{background:g}%"):
        lifetime = len(targets) * 2 * (seconds + settle + 3) + 30
        hog = start_background(cores[0], background, lifetime) if load != "none" else None
        try:
            for target in targets:
                for loop in ("closed", "open"):
                    samples = measure_case(cores, target, loop == "closed", seconds, settle)
                    errors = summary.setdefault((load, loop), Errors())
                    case = Errors()
                    for values in samples.values():
                        for sample in values:
                            error = abs(sample.measured - target)
                            for bucket in (errors, case):
                                bucket.all.append(error)
                                # Reachable: everybody else's load on the core left room for the target.
                                if sample.other() <= target:
                                    bucket.reachable.append(error)
                    means = " ".join(
                        f"{sum(s.measured for s in v) / len(v):5.1f}/{sum(s.own for s in v) / len(v):4.1f}"
                        for v in samples.values()
                    )
                    print(
                        f"{load:>10} {target:6.0f} {loop:>6}  {means:<24} {Errors.mean(case.all):5.1f}"
                        f" {Errors.mean(case.reachable):8.1f} ({len(case.reachable)}/{len(case.all)})"
                    )
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
    print("\nmean absolute error, percentage points, 1 s resolution")
    print(f"{'background':>12} {'loop':>6} {'all samples':>12} {'reachable':>10} {'(count)':>10}")
    for (load, loop), errors in summary.items():
        print(
            f"{load:>12} {loop:>6} {Errors.mean(errors.all):12.1f} {Errors.mean(errors.reachable):10.1f}"
            f" {len(errors.reachable):>5}/{len(errors.all)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", default="10,30,50,70,90", help="comma-separated percents")
    parser.add_argument("--seconds", type=int, default=10, help="one-second samples per case")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds left out at the start of each case")
    parser.add_argument("--background", type=float, default=30.0, help="percent the other process keeps core 0 busy")
    args = parser.parse_args()
    run([float(value) for value in args.targets.split(",")], args.seconds, args.settle, args.background)


if __name__ == "__main__":
    main()
