"""``pyfiledrop awake [--screen] -- COMMAND [ARGS...]``: run a command with the host kept awake until it exits.

Ctrl-C and SIGTERM sent to pyfiledrop are passed on to the command once (a Ctrl-C typed at the terminal reaches
the command by itself, so it is not sent twice); the exit code is the command's (128 + N when a signal N ended it,
as shells say). With no way to keep the host awake the command still runs, after one warning on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

from pyfiledrop.awake.hold import Hold

EXIT_USAGE = 2
EXIT_CANNOT_RUN = 126  # as shells: found but cannot be run
EXIT_NOT_FOUND = 127  # as shells: no such command
_FORWARDED = (signal.SIGINT, signal.SIGTERM)
_SI_KERNEL = 0x80  # siginfo code of a signal the kernel made itself (the terminal's Ctrl-C, sent to the group)
_WAIT_SLICE = 1.0  # seconds between checks of the child when no signal comes (SIGCHLD normally ends the wait)


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser("awake", help="run a command with the host kept awake until it exits",
                                 usage="pyfiledrop awake [--screen] -- COMMAND [ARGS...]",
                                 description="Run COMMAND with system sleep held off until it exits; Ctrl-C and "
                                 "SIGTERM are passed on to it, and its exit code is pyfiledrop's.")  # fmt: skip
    parser.add_argument("--screen", action="store_true", help="also keep the display on")
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]",
                        help="the command to run and its arguments")  # fmt: skip


def run(namespace: argparse.Namespace) -> int:
    command = list(namespace.argv)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print("pyfiledrop awake: error: give the command to run: pyfiledrop awake -- COMMAND [ARGS...]",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    hold = Hold(screen=bool(namespace.screen))
    outcome = hold.acquire(f"running {shlex.join(command)}"[:200])
    if not outcome.held:
        print(f"pyfiledrop awake: warning: cannot keep the host awake ({outcome.reason}); running the command anyway",
              file=sys.stderr, flush=True)  # fmt: skip
    try:
        return _run(command)
    finally:
        hold.release()


def _run(command: Sequence[str]) -> int:
    started: list[subprocess.Popen[bytes]] = []
    with _forwarding(started):
        try:
            child = subprocess.Popen(command)
        except FileNotFoundError:
            print(f"pyfiledrop awake: error: {command[0]}: command not found", file=sys.stderr)
            return EXIT_NOT_FOUND
        except PermissionError as exc:
            print(f"pyfiledrop awake: error: {command[0]}: {exc.strerror}", file=sys.stderr)
            return EXIT_CANNOT_RUN
        started.append(child)
        code = _wait(child)
    return 128 - code if code < 0 else code


@contextlib.contextmanager
def _forwarding(started: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    """Until the child is waited for, SIGINT/SIGTERM go to it rather than ending us (we must release the hold)."""

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in started:
            # ValueError: Windows cannot send SIGINT to a process (its console's Ctrl-C reaches the child anyway)
            with contextlib.suppress(ProcessLookupError, ValueError):
                child.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in _FORWARDED}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _wait(child: subprocess.Popen[bytes]) -> int:
    if not hasattr(signal, "sigtimedwait"):  # Windows, macOS: the handlers forward every signal
        return child.wait()
    # Here the signals are taken synchronously, to see who sent them: one the terminal sent to the whole process
    # group reached the child already. Blocked only now, so the child (already started) does not inherit the mask.
    waited = {*_FORWARDED, signal.SIGCHLD}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    try:
        while (code := child.poll()) is None:
            info = signal.sigtimedwait(waited, _WAIT_SLICE)
            if info is not None and info.si_signo in _FORWARDED and info.si_code != _SI_KERNEL:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(info.si_signo)
        return code
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
