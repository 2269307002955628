"""``pyfiledrop awake [--screen] -- COMMAND [ARGS...]``: the host is kept awake while COMMAND runs; signals are
passed on; the exit code is COMMAND's; with no way to keep awake it still runs, after one warning."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from tests.awake.conftest import Buses

AWAKE = [sys.executable, "-m", "pyfiledrop", "awake"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AWAKE, *args], capture_output=True, text=True, timeout=60)


def test_holds_while_the_command_runs_and_exits_with_its_code(make_buses: Callable[..., Buses]) -> None:
    buses = make_buses(logind=True, desktop=False)
    # The command itself checks that the lock is held while it runs, and answers 3 if so.
    check = f'grep -q \'"event": "inhibit"\' {buses.events_path} && exit 3; exit 9'
    result = _run("--", "sh", "-c", check)
    assert result.returncode == 3, result.stderr
    assert result.stderr == ""
    buses.wait_for(lambda: buses.held() == [], timeout=5, what="the release")
    taken, released = buses.events("logind")
    assert (taken["event"], taken["who"], taken["what"], taken["mode"]) == ("inhibit", "pyfiledrop", "sleep", "block")
    assert taken["why"].startswith("running sh -c ")
    assert (released["event"], released["id"]) == ("release", taken["id"])


def test_the_exact_example_of_the_issue(make_buses: Callable[..., Buses]) -> None:
    buses = make_buses(logind=True, desktop=False)
    assert _run("--", "sh", "-c", "exit 3").returncode == 3
    buses.wait_for(lambda: [e["event"] for e in buses.events()] == ["inhibit", "release"], timeout=5)


def test_screen_keeps_the_display_on_too(make_buses: Callable[..., Buses]) -> None:
    buses = make_buses(logind=True, desktop=False)
    assert _run("--screen", "--", "true").returncode == 0
    assert buses.events("logind")[0]["what"] == "sleep:idle"


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 7), (signal.SIGINT, 5)])
def test_sigterm_and_sigint_are_passed_on_once(make_buses: Callable[..., Buses], signum: int, code: int) -> None:
    buses = make_buses(logind=True, desktop=False)
    child = (
        "import signal, sys, time\n"
        "got = []\n"
        f"signal.signal({int(signum)}, lambda *_: got.append(1))\n"
        "print('ready', flush=True)\n"
        "deadline = time.monotonic() + 30\n"
        "while not got and time.monotonic() < deadline: time.sleep(0.01)\n"
        "time.sleep(0.5)  # a second copy of the signal would arrive in this time\n"
        f"sys.exit({code} if len(got) == 1 else 100 + len(got))\n"
    )
    process = subprocess.Popen([*AWAKE, "--", sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    assert len(buses.held()) == 1
    os.kill(process.pid, signum)
    assert process.wait(30) == code
    process.stdout.close()
    buses.wait_for(lambda: buses.held() == [], timeout=5, what="the release")


def test_a_command_ended_by_a_signal_exits_128_plus_its_number(make_buses: Callable[..., Buses]) -> None:
    buses = make_buses(logind=True, desktop=False)
    assert _run("--", "sh", "-c", "kill -TERM $$").returncode == 128 + signal.SIGTERM
    buses.wait_for(lambda: buses.held() == [], timeout=5, what="the release")


def test_with_no_usable_method_the_command_still_runs_after_one_warning(make_buses: Callable[..., Buses]) -> None:
    make_buses(logind=False, desktop=False, system_bus=False)
    started = time.monotonic()
    result = _run("--", "sh", "-c", "echo ran; exit 3")
    assert result.returncode == 3
    assert result.stdout == "ran\n"
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and "warning: cannot keep the host awake" in warnings[0], result.stderr
    assert "no system bus" in warnings[0]
    assert time.monotonic() - started < 20


def test_a_missing_command_exits_127_and_no_command_exits_2(make_buses: Callable[..., Buses]) -> None:
    buses = make_buses(logind=True, desktop=False)
    missing = _run("--", "no-such-command-for-pyfiledrop")
    assert missing.returncode == 127 and "command not found" in missing.stderr
    assert _run().returncode == 2
    assert _run("--").returncode == 2
    buses.wait_for(lambda: buses.held() == [], timeout=5, what="the release on the error paths too")
