"""No worker outlives its run: Ctrl-C, SIGTERM, SIGKILL of the parent, or the end of --duration."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from tests.cpupaint.helpers import alive, start, wait_all_gone, worker_pids

# The contract says one second; the margin is for a shared, busy 2-core machine scheduling the checks.
GONE_WITHIN = 2.0


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["INT", "TERM", "KILL"])
def test_workers_exit_when_the_parent_is_signalled(number: signal.Signals) -> None:
    process = start("levels", "--all", "20", "--duration", "30")
    try:
        pids = worker_pids(process)
        assert len(pids) == len(os.sched_getaffinity(0))
        assert all(psutil.Process(pid).ppid() == process.pid for pid in pids)
        assert all(alive(pid) for pid in pids)
        signalled = time.monotonic()
        os.kill(process.pid, number)
        left = wait_all_gone(pids, GONE_WITHIN)
        assert left == [], f"workers {left} still alive {GONE_WITHIN} s after {number.name} to the parent"
        code = process.wait(timeout=GONE_WITHIN)
        assert time.monotonic() - signalled < GONE_WITHIN + 0.5
        if number == signal.SIGKILL:
            assert code == -signal.SIGKILL
        else:
            assert code == 0, process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_ctrl_c_in_a_terminal_reaches_the_whole_group_and_all_exit_quietly() -> None:
    # A terminal's Ctrl-C sends SIGINT to the parent and its workers alike (one process group).
    process = start("levels", "--all", "20", "--duration", "30")
    try:
        pids = worker_pids(process)
        os.killpg(process.pid, signal.SIGINT)
        assert wait_all_gone(pids, GONE_WITHIN) == []
        code = process.wait(timeout=GONE_WITHIN)
    finally:
        if process.poll() is None:
            process.kill()
        _out, err = process.communicate()
    assert code == 0, err
    assert "stopped early by SIGINT" in err
    assert "Traceback" not in err


def test_workers_exit_at_the_end_of_the_duration() -> None:
    process = start("levels", "--all", "10", "--duration", "1")
    try:
        pids = worker_pids(process)
        code = process.wait(timeout=10)
        assert code == 0
        assert wait_all_gone(pids, 0.1) == []
    finally:
        if process.poll() is None:
            process.kill()
        _out, err = process.communicate()
    assert "stopped early" not in err


def test_a_dead_worker_fails_the_run_and_stops_the_others() -> None:
    process = start("levels", "--all", "20", "--duration", "30")
    try:
        pids = worker_pids(process)
        os.kill(pids[0], signal.SIGKILL)
        code = process.wait(timeout=GONE_WITHIN + 1)
        assert wait_all_gone(pids, GONE_WITHIN) == []
    finally:
        if process.poll() is None:
            process.kill()
        _out, err = process.communicate()
    assert code == 1
    first_core = min(os.sched_getaffinity(0))
    assert f"cpupaint: error: the worker of core {first_core} exited with code {-signal.SIGKILL}" in err
