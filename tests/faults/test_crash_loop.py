"""kill -9 at random moments of many uploads (chunk writes, completions, deduplication, expiry sweeps, deletes):
after every restart each acknowledged byte is there, each finished file matches its sha256, no orphan, no dangling
blob; at the end every upload finishes with the exact bytes. The workload and the checks are in crashkit.py;
``benchmarks/soak/crash_loop.py`` runs the same loop for as long as you like.

The seed is random each run and printed; ``CRASH_LOOP_SEED=<n>`` replays the same workload and kill delays (the
server's timing still varies, so a replay hits nearby, not identical, moments).
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.faults.crashkit import run_crash_loop

KILLS = 12


def test_kill_9_at_random_moments_keeps_every_acknowledged_byte(tmp_path: Path) -> None:
    seed = int(os.environ["CRASH_LOOP_SEED"]) if os.environ.get("CRASH_LOOP_SEED") else None
    report = run_crash_loop(tmp_path / "storage", kills=KILLS, seconds=40, seed=seed)
    assert not report.problems, f"seed {report.seed}:\n" + "\n".join(report.problems[:40])
    assert report.kills >= KILLS // 2, report.summary()  # the time bound was not used up before the kills
    assert report.counts.get("completed", 0) >= 20, report.summary()
