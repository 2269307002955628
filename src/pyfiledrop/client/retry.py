"""Failures of an upload, and calling again after a transient one (with backoff and jitter)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Protocol, TypeVar

from pyfiledrop.client.http import HttpError, TransportError
from pyfiledrop.client.tus import OffsetConflict, UploadGone

T = TypeVar("T")

_BACKOFF_CAP = 30.0


class UploadFailed(Exception):
    """An upload could not be finished; the message says why."""


class Cancelled(Exception):
    pass


class Policy(Protocol):
    """What a retrier needs of the options (``upload.Options``)."""

    retries: int
    backoff: float


class Retrier:
    """Call again on transient failures, with exponential backoff and jitter; ``reset`` after progress."""

    def __init__(self, options: Policy, note: Callable[[str], None], cancel: threading.Event | None = None,
                 label: str = "") -> None:  # fmt: skip
        self.options = options
        self.note = note
        self.label = label
        self.cancel = cancel or threading.Event()
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def failed(self, what: str, exc: Exception) -> None:
        """Sleep before the next try, or raise UploadFailed when the tries are used up."""
        if not retryable(exc):
            raise UploadFailed(f"{what}: {exc}") from exc
        self.failures += 1
        if self.failures > self.options.retries:
            raise UploadFailed(f"{what}: {exc} (gave up after {self.options.retries} retries)") from exc
        delay = min(self.options.backoff * 2 ** (self.failures - 1), _BACKOFF_CAP)
        delay *= 0.75 + random.random() / 2  # noqa: S311 - jitter, not cryptography
        if not isinstance(exc, OffsetConflict):
            prefix = f"{self.label}: " if self.label else ""
            self.note(f"{prefix}{what}: {exc}; retry {self.failures}/{self.options.retries} in {delay:.1f} s")
        if self.cancel.wait(delay):
            raise Cancelled()

    def call(self, what: str, fn: Callable[[], T]) -> T:
        while True:
            try:
                return fn()
            except (TransportError, HttpError) as exc:
                self.failed(what, exc)


def retryable(exc: Exception) -> bool:
    if isinstance(exc, TransportError):
        return exc.transient
    if isinstance(exc, OffsetConflict):
        return True
    return isinstance(exc, HttpError) and not isinstance(exc, UploadGone) and exc.retryable
