"""Headroom for the database on a full disk: a file of a few MiB kept allocated beside it, given back the moment
SQLite cannot write, so that the server can still record what frees space (a DELETE, a sweep) and what was
received. While it is given back, uploads take no more bytes: they get 507 until the reserve can be made again
(that is, until a deletion or the operator freed at least twice its size). A disk that is full is then always
one DELETE away from working, through the server's own API."""

from __future__ import annotations

import errno
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger("pyfiledrop.storage")

RESERVE_BYTES = 4 << 20  # a thousand SQLite pages: deletions and progress records for a long while
RESERVE_SHARE = 16  # on a small file system, at most this fraction of it (a 64 MiB tmpfs keeps 4 MiB)


class SpaceReserve:
    """``ready()`` before taking upload bytes; ``release()`` when the database reports a full disk."""

    def __init__(self, path: Path, size: int | None = None) -> None:
        self.path = path
        self._size = size
        self.armed = False
        self.unavailable = False  # the file system would not have it: the server runs without (as before it)
        self._lock = threading.Lock()  # released from the database's thread, made again on the event loop's

    @property
    def size(self) -> int:
        if self._size is None:
            stats = os.statvfs(self.path.parent)
            self._size = max(min(RESERVE_BYTES, stats.f_blocks * stats.f_frsize // RESERVE_SHARE), 1 << 20)
        return self._size

    def ready(self) -> bool:
        """Whether uploads may take bytes: the reserve is in place, or could be made again now."""
        return self.armed or self.unavailable or self.arm()

    def arm(self) -> bool:
        """Allocate the reserve if at least its size stays free beside it (else the disk would be full at once)."""
        with self._lock:
            if self.armed:
                return True
            try:
                held = _allocated(self.path)
                if held >= self.size:  # made by an earlier run, and still whole
                    self.armed = True
                    return True
                stats = os.statvfs(self.path.parent)
                if stats.f_bavail * stats.f_frsize + held < 2 * self.size:
                    return False
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
                try:
                    os.posix_fallocate(fd, 0, self.size)  # real blocks, not a sparse length
                finally:
                    os.close(fd)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    return False
                # Not a lack of space (permissions, a file system without the call): uploads must not wait for it.
                log.warning("cannot keep a disk reserve at %s (%s); a full disk may then need freeing by hand",
                            self.path, exc)  # fmt: skip
                self.unavailable = True
                return False
            self.armed = True
            return True

    def release(self) -> bool:
        """Give the reserve's space back (the database is full); True if there was any to give."""
        with self._lock:
            if not self.armed:
                return False
            self.armed = False
            try:
                self.path.unlink()
            except FileNotFoundError:
                return False
        log.warning(
            "disk full: released the %d-byte reserve so the database can record; uploads get 507 until space is "
            "freed (delete uploads through the API or free the disk)", self.size,
        )  # fmt: skip
        return True


def _allocated(path: Path) -> int:
    try:
        return path.stat().st_blocks * 512
    except FileNotFoundError:
        return 0
