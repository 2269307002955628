"""The server's hold follows what is in flight: uploads receiving bytes, downloads sending them, video jobs.

``begin(kind)`` / ``end(kind)`` (or ``with tracker.transfer(kind):``) are called on the event loop's thread on the
upload hot path, so they only count: no lock, no system call, no D-Bus message. Only the transitions — the first
transfer starting while nothing is held, and the end of the grace period after the last one ended — hand work to
one worker thread, which takes or lets go of the hold there (a D-Bus round trip may block for up to seconds).

Modes: ``auto`` holds while anything is in flight and ``grace`` seconds after the last transfer ends, so a resumable
upload that pauses between chunks for less than that keeps the hold; ``always`` holds from start-up to shutdown;
``never`` never holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pyfiledrop.awake.hold import Hold, Outcome

log = logging.getLogger("pyfiledrop.awake")

MODES = ("auto", "always", "never")
KINDS = ("upload", "download", "job")
_NAMES = {"upload": ("upload", "uploads"), "download": ("download", "downloads"), "job": ("video job", "video jobs")}
_CLOSE_WAIT = 10.0  # seconds close() waits for the worker: a wedged D-Bus call times out well before (logind.TIMEOUT)


@dataclass(frozen=True, slots=True)
class Status:
    mode: str
    held: bool
    method: str | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "held": self.held, "method": self.method, "reason": self.reason}


class Tracker:
    def __init__(self, mode: str = "auto", grace: float = 120.0, screen: bool = False, hold: Hold | None = None):
        if mode not in MODES:
            raise ValueError(f"keep-awake mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        self.grace = grace
        self.screen = screen
        self._hold = hold if hold is not None else Hold(screen)
        self._counts = dict.fromkeys(KINDS, 0)
        self._total = 0
        self._auto = False  # True once started in auto mode: transitions take and release the hold
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._idle_since = 0.0
        self._wanted = False  # what the loop asked for; the worker makes it so
        self._worker: ThreadPoolExecutor | None = None
        self._outcome: Outcome | None = None  # the worker's last attempt (None: none yet, or released since)
        self._failure: str | None = None  # why the last attempt failed, kept for the status
        self._warned = False

    # -- the hot path: the event loop's thread only ---------------------------------------------------------------

    def begin(self, kind: str = "upload") -> None:
        """``kind``: "upload", "download", "job" — or another word, which the status then names as it is."""
        self._counts[kind] = self._counts.get(kind, 0) + 1
        self._total += 1
        if self._total == 1 and self._auto and not self._wanted:
            self._want(True)

    def end(self, kind: str = "upload") -> None:
        self._counts[kind] -= 1
        self._total -= 1
        if self._total == 0 and self._auto and self._loop is not None:
            self._idle_since = self._loop.time()
            if self._timer is None:  # one timer per grace period, however many transfers come and go in it
                self._timer = self._loop.call_later(self.grace, self._grace_over)

    @contextlib.contextmanager
    def transfer(self, kind: str = "upload") -> Iterator[None]:
        self.begin(kind)
        try:
            yield
        finally:
            self.end(kind)

    def begin_threadsafe(self, kind: str = "job") -> None:
        """``begin`` from a thread other than the event loop's (a job runner's own thread)."""
        if self._loop is None:
            raise RuntimeError("the tracker has not been started")
        self._loop.call_soon_threadsafe(self.begin, kind)

    def end_threadsafe(self, kind: str = "job") -> None:
        if self._loop is None:
            raise RuntimeError("the tracker has not been started")
        self._loop.call_soon_threadsafe(self.end, kind)

    # -- life -----------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """On the event loop, at server start-up: ``always`` takes the hold now (and waits for the outcome)."""
        self._loop = asyncio.get_running_loop()
        if self.mode == "always":
            self._wanted = True
            await self._loop.run_in_executor(self._executor(), self._reconcile)
        elif self.mode == "auto":
            self._auto = True
            if self._total > 0:
                self._want(True)

    def close(self) -> None:
        """Let the hold go and wait for it (bounded). Idempotent; from any thread; on every way out of the server."""
        self._auto = False
        self._wanted = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        worker, self._worker = self._worker, None
        if worker is None:
            return
        release = worker.submit(self._reconcile)
        with contextlib.suppress(Exception):
            release.result(timeout=_CLOSE_WAIT)
        worker.shutdown(wait=False)

    # -- status ---------------------------------------------------------------------------------------------------

    def in_flight(self) -> str:
        parts = [f"{n} {_NAMES.get(kind, (kind, kind + 's'))[n != 1]}" for kind, n in self._counts.items() if n]
        return f"{', '.join(parts)} in flight" if parts else "nothing in flight"

    def status(self) -> Status:
        if self.mode == "never":
            return Status("never", False, None, "--keep-awake never: the host may sleep whenever it likes")
        outcome, doing = self._outcome, self.in_flight()
        if self.mode == "always":
            doing = f"--keep-awake always; {doing}"
        elif self._total == 0 and outcome is not None and outcome.held:
            doing = f"nothing in flight; held for the {self.grace:g} s grace after the last transfer"
        if outcome is not None and outcome.held:
            return Status(self.mode, True, outcome.method, f"{doing}; {outcome.reason}")
        if self._failure is not None:
            return Status(self.mode, False, None, f"{doing}; cannot keep the host awake: {self._failure}")
        if self._wanted:
            return Status(self.mode, False, None, f"{doing}; taking the hold")
        return Status(self.mode, False, None, doing)

    # -- transitions ----------------------------------------------------------------------------------------------

    def _grace_over(self) -> None:
        self._timer = None
        if self._total > 0 or self._loop is None:
            return
        left = self._idle_since + self.grace - self._loop.time()
        if left > 0:  # a transfer came and went during the grace: count from its end
            self._timer = self._loop.call_later(left, self._grace_over)
        else:
            self._want(False)

    def _want(self, held: bool) -> None:
        self._wanted = held
        self._executor().submit(self._reconcile)

    def _executor(self) -> ThreadPoolExecutor:
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyfiledrop-awake")
        return self._worker

    def _reconcile(self) -> None:
        """In the worker thread: make the hold what the loop last asked for (several asks come down to one)."""
        try:
            if self._wanted and not self._hold.held:
                self._take()
            elif not self._wanted and self._hold.held:
                self._hold.release()
                self._outcome = None
                log.info("the host may sleep again (%s)", self.in_flight())
        except Exception:  # keeping awake is a courtesy: it never stops the server
            log.exception("keeping the host awake failed")

    def _take(self) -> None:
        why = self.in_flight() if self.mode == "auto" else "pyfiledrop serve --keep-awake always"
        outcome = self._hold.acquire(why)
        self._outcome = outcome
        if outcome.held:
            self._failure = None
            log.info("keeping the host awake (%s): %s", why, outcome.reason)
            return
        self._failure = outcome.reason
        if not self._warned:  # once per run: a host without any method would otherwise warn at every upload
            self._warned = True
            log.warning("cannot keep the host awake; uploads go on regardless: %s", outcome.reason)


def banner(mode: str, grace: float, screen: bool) -> str:
    """The start-up banner's line: the mode, and the status /api/admin/stats starts from."""
    status = Tracker(mode, grace, screen).status()
    match mode:
        case "auto":
            when = f"held while transfers run and {grace:g} s after the last; {status.reason} now"
        case "always":
            when = "held from start-up to shutdown"
        case _:
            when = status.reason
    return f"{mode} ({when}){'; the screen is kept on too' if screen and mode != 'never' else ''}"
