"""How close does cpupaint hold a core to its target, second by second, as /proc/stat counts it?

For each target (default 10, 30, 50, 70, 90 %) every core is held at the target, once with the closed loop and once
with an open-loop duty cycle (spin target % of each 100 ms period, like a hand-tuned busy/sleep loop), first on the
machine as it is, then with another process keeping core 0 busy at --background % (an open-loop spinner pinned
there). Per-core utilisation is read from /proc/stat at every wall-clock second boundary after a settle time; the
mean absolute error (percentage points) per case is printed, plus the MAE over reachable samples only (a core that
other load keeps above the target cannot be brought down by any painter).

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


def measure_case(cores: list[int], target: float, closed: bool, seconds: int, settle: float) -> dict[int, list[float]]:
    """Per-core utilisation of each whole wall-clock second after the settle time."""
    plan = schedule.constant(cores, [target] * len(cores), settle + seconds + 1.0)
    began: list[float] = []
    ready = threading.Event()

    def started(_workers: list[tuple[int, int]], begin: float) -> None:
        began.append(begin)
        ready.set()

    thread = threading.Thread(target=runner.paint, args=(plan, StopRequest(), closed, True, started))
    thread.start()
    ready.wait(30)
    first = math.ceil(began[0] + settle)
    samples: dict[int, list[float]] = {core: [] for core in cores}
    time.sleep(max(0.0, first - time.time()))
    previous = counters.read_all()
    for second in range(1, seconds + 1):
        time.sleep(max(0.0, first + second - time.time()))
        now = counters.read_all()
        for core in cores:
            samples[core].append(counters.utilisation(previous[core], now[core]))
        previous = now
    thread.join(30)
    return samples


def run(targets: list[float], seconds: int, settle: float, background: float) -> None:
    cores = counters.usable_cores()
    print(f"cores {cores}; {seconds} one-second samples per core and case after {settle:g} s settle")
    print(f"{'load':>10} {'target':>6} {'loop':>6}  per-core mean measured      MAE  (per-second samples)")
    summary: dict[tuple[str, str], Errors] = {}
    for load in ("none", f"core0@{background:g}%"):
        hog = (
            start_background(cores[0], background, len(targets) * 2 * (seconds + settle + 3) + 30)
            if load != "none"
            else None
        )
        try:
            for target in targets:
                for loop in ("closed", "open"):
                    samples = measure_case(cores, target, loop == "closed", seconds, settle)
                    errors = summary.setdefault((load, loop), Errors())
                    case_errors = []
                    for core, values in samples.items():
                        floor = background if hog is not None and core == cores[0] else 0.0
                        for value in values:
                            error = abs(value - target)
                            errors.all.append(error)
                            case_errors.append(error)
                            if target >= floor:
                                errors.reachable.append(error)
                    means = " ".join(f"{sum(v) / len(v):5.1f}" for v in samples.values())
                    print(f"{load:>10} {target:6.0f} {loop:>6}  {means:<26} {Errors.mean(case_errors):5.1f}")
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
    print("\nmean absolute error, percentage points, 1 s resolution")
    print(f"{'background':>12} {'loop':>6} {'all targets':>12} {'reachable':>10}")
    for (load, loop), errors in summary.items():
        print(f"{load:>12} {loop:>6} {Errors.mean(errors.all):12.1f} {Errors.mean(errors.reachable):10.1f}")


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
