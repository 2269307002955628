"""Transfers in flight, as the engine reports them to whoever listens (keep-awake, video jobs count too).

The engine only calls ``begin``/``end`` around a transfer; what follows from it (holding off system sleep) lives in
a feature above the engine (``pyfiledrop.awake.tracker.Tracker`` is one), so the engine imports no feature.
"""

from __future__ import annotations

from typing import Protocol


class Activity(Protocol):
    """Two cheap calls on the event loop: no lock, no system call (the listener does its work on transitions)."""

    def begin(self, kind: str = "upload") -> None: ...

    def end(self, kind: str = "upload") -> None: ...


class Untracked:
    """Counts nothing, holds nothing: for an UploadService used on its own (tests, ``verify``)."""

    def begin(self, kind: str = "upload") -> None:
        pass

    def end(self, kind: str = "upload") -> None:
        pass
