"""One request to keep the host awake, through the first method that works (awake/methods.py gives the order).

Not thread-safe on purpose: acquire and release from one and the same thread (wakepy's Modes insist on it; the
server's tracker does both in its own worker thread, ``pyfiledrop awake`` in its main thread).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wakepy import Mode

    from pyfiledrop.awake import logind

LOGIND = "logind"  # our own method's name (awake/logind.py), beside wakepy's

log = logging.getLogger("pyfiledrop.awake")
# wakepy logs each attempt at INFO, several long lines per method; ours say what matters once.
logging.getLogger("wakepy").setLevel(logging.WARNING)


@dataclass(frozen=True, slots=True)
class Outcome:
    held: bool
    method: str | None  # the method that holds it, or None
    reason: str  # how it is held ("logind block inhibitor on sleep"), or why it could not be


class Hold:
    def __init__(self, screen: bool = False, methods: Sequence[str] | None = None) -> None:
        self.screen = screen
        self._methods = None if methods is None else list(methods)
        self._inhibitor: logind.Inhibitor | None = None
        self._mode: Mode | None = None

    @property
    def held(self) -> bool:
        return self._inhibitor is not None or self._mode is not None

    def methods(self) -> list[str]:
        if self._methods is None:
            from pyfiledrop.awake.methods import plan

            self._methods = plan(screen=self.screen)
        return self._methods

    def acquire(self, why: str) -> Outcome:
        """Take the first method that works; never raises for a method that fails (the outcome says why)."""
        if self.held:
            raise RuntimeError("already held: release it first")
        failures: list[str] = []
        # logind first where it may be, before wakepy is even imported (a quarter second, off the event loop)
        if LOGIND in (self._methods if self._methods is not None else _default_first()):
            outcome = self._logind(why)
            if outcome.held:
                return outcome
            failures.append(outcome.reason)
        if self._methods is None and _without_session_bus():
            # wakepy's Linux methods all talk to the session bus: without one (a headless server) they cannot work,
            # and wakepy is not even imported (a quarter second of CPU in the middle of the first upload).
            failures.append("desktop inhibitors (wakepy): no session bus (DBUS_SESSION_BUS_ADDRESS is not set)")
            others = []
        else:
            others = [name for name in self.methods() if name != LOGIND]
        if others:
            outcome = self._wakepy(others)
            if outcome.held:
                return outcome
            failures.append(outcome.reason)
        return Outcome(False, None, "; ".join(failures) or "no method to keep this platform awake")

    def release(self) -> None:
        inhibitor, mode = self._inhibitor, self._mode
        self._inhibitor = self._mode = None
        if inhibitor is not None:
            inhibitor.release()
        if mode is not None:
            try:
                mode.__exit__(None, None, None)
            except Exception as exc:  # noqa: BLE001 - wakepy's methods fail in undocumented ways; the process goes on
                log.warning("releasing the wakepy method failed: %s", exc)

    def _logind(self, why: str) -> Outcome:
        from pyfiledrop.awake import logind  # jeepney, imported only where logind may be

        what = "sleep:idle" if self.screen else "sleep"
        try:
            inhibitor = logind.inhibit(what, why)
        except logind.Unavailable as exc:
            return Outcome(False, None, f"{LOGIND}: {exc}")
        self._inhibitor = inhibitor
        if inhibitor.mode == "delay":
            reason = f"logind delay inhibitor on {what} only (a block one was refused: {inhibitor.refusal})"
        else:
            reason = f"logind block inhibitor on {what}"
        return Outcome(True, LOGIND, reason)

    def _wakepy(self, names: list[str]) -> Outcome:
        from wakepy import keep

        start = keep.presenting if self.screen else keep.running
        try:
            mode = start(methods=names, on_fail="pass")
            mode.__enter__()
        except Exception as exc:  # noqa: BLE001 - see release(): failing to keep awake must not stop anything
            return Outcome(False, None, f"wakepy: {exc}")
        if mode.active and mode.active_method is not None:
            self._mode = mode
            return Outcome(True, mode.active_method.name, f"wakepy {mode.name} mode by {mode.active_method.name}")
        failures: dict[str, list[str]] = {}  # the same reason for several methods is said once
        for result in mode.result.list_methods(ignore_unused=True):
            if result.success is False:
                failures.setdefault(_short(result.failure_reason), []).append(result.method.name)
        mode.__exit__(None, None, None)
        text = "; ".join(f"{', '.join(names)}: {reason}" for reason, names in failures.items())
        return Outcome(False, None, text or f"wakepy: no method for {mode.name}")


def _without_session_bus() -> bool:
    return sys.platform.startswith("linux") and not os.environ.get("DBUS_SESSION_BUS_ADDRESS")


def _default_first() -> list[str]:
    return [LOGIND] if sys.platform.startswith("linux") else []


def _short(reason: str) -> str:
    """wakepy's D-Bus failures wrap the real cause in a long sentence and advice: keep the cause."""
    _, found, cause = reason.partition("failed with message: ")
    text = (cause if found else reason).strip()
    for end in ("! ", ". "):
        text = text.split(end, 1)[0]
    return text if len(text) <= 200 else text[:199] + "…"
