"""Filling a buffer from a non-blocking socket in a worker thread — the server's reading threads and the intake
helper process (``storage/intake_helper.py``) share it, so both stop for the same reasons."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable

POLL_SLICE_MS = 100  # a socket-reading thread looks up this often to see whether it should stop
# A socket-reading thread that gets nothing for this long gives the socket back to the event loop, which waits for
# more without a thread: stalled or trickling clients must not hold the threads every other upload needs.
PARK_AFTER_S = 0.25


class Gone(Exception):
    """The client closed the connection."""


class Parked(Exception):
    """A socket-reading thread found nothing for a while and gave the socket back (not an error of the body)."""


def fill_from_socket(
    fd: int, view: memoryview, idle_timeout: float, stopped: Callable[[], bool]
) -> tuple[int, BaseException | None]:
    """Read until ``view`` is full. Stops short with why: the client left (``Gone``), nothing came for the idle
    timeout (TimeoutError), or for ``PARK_AFTER_S`` (``Parked``: the event loop waits for more, not this thread),
    or ``stopped()`` said so (``Gone``)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    got = 0
    last = time.monotonic()
    while got < len(view):
        if stopped():
            return got, Gone()
        try:
            n = os.readv(fd, [view[got:]])
        except BlockingIOError:
            if not poller.poll(POLL_SLICE_MS):
                idle = time.monotonic() - last
                if idle > idle_timeout:
                    return got, TimeoutError()
                if idle > PARK_AFTER_S:
                    return got, Parked()
            continue
        except OSError as exc:
            return got, Gone(str(exc))
        if n == 0:
            return got, Gone()
        got += n
        last = time.monotonic()
    return got, None
