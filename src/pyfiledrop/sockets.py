"""Filling a buffer from a non-blocking socket in a worker thread — the server's reading threads and the intake
helper process (``storage/intake_helper.py``) share it, so both stop for the same reasons."""

from __future__ import annotations

import contextlib
import os
import select
import socket
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
    fd: int, view: memoryview, idle_timeout: float, stopped: Callable[[], bool], wake_at: int = 0
) -> tuple[int, BaseException | None]:
    """Read until ``view`` is full. Stops short with why: the client left (``Gone``), nothing came for the idle
    timeout (TimeoutError), or for ``PARK_AFTER_S`` (``Parked``: the event loop waits for more, not this thread),
    or ``stopped()`` said so (``Gone``).

    ``wake_at``: while waiting, wake only once this many bytes are queued (``SO_RCVLOWAT``; never more than the
    view still needs), not for every segment: a client slower than the server otherwise woke the thread, and had it
    read, acknowledge and hand the GIL over, for each few dozen KiB — CPU per GiB grew as the client got slower."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    got = 0
    last = time.monotonic()
    lowat = _Lowat(fd) if wake_at > 1 else None
    try:
        while got < len(view):
            if stopped():
                return got, Gone()
            try:
                n = os.readv(fd, [view[got:]])
            except BlockingIOError:
                if lowat is not None:
                    lowat.set(min(wake_at, len(view) - got))
                if not poller.poll(POLL_SLICE_MS):  # at the latest then, what is queued is read (a trickle too)
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
    finally:
        if lowat is not None:
            lowat.release()


class _Lowat:
    """A socket's ``SO_RCVLOWAT``, set only when it changes (a system call each; none while reads find bytes)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.sock: socket.socket | None = None  # borrowed once needed: detached, never closed here
        self.value = 1

    def set(self, value: int) -> None:
        if value == self.value:
            return
        if self.sock is None:
            self.sock = socket.socket(fileno=self.fd)
        # Not a socket that has it (a pipe in a test): every byte wakes, as before.
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, value)
        self.value = value

    def release(self) -> None:
        """Back to the default (whoever reads next, the event loop, wakes for any byte); the socket is let go."""
        self.set(1)
        if self.sock is not None:
            self.sock.detach()
