"""Other live processes for claims tests: each runs a script that takes claims, prints "holding" and waits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator

Holder = Callable[..., subprocess.Popen[str]]


def holders(script: str, where: str) -> Iterator[Holder]:
    """For a fixture (``yield from``): ``hold(*keys)`` starts ``script`` with ``where`` and the keys and returns once
    the process holds them; every process still running is SIGKILLed at the end."""
    started: list[subprocess.Popen[str]] = []

    def hold(*keys: str) -> subprocess.Popen[str]:
        process = subprocess.Popen([sys.executable, "-c", script, where, *keys], stdout=subprocess.PIPE, text=True,
                                   start_new_session=True)  # fmt: skip
        assert process.stdout is not None and process.stdout.readline().strip() == "holding"
        started.append(process)
        return process

    yield hold
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
