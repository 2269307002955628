"""Claims: which process works on an upload right now, when several processes (replicas) share the stores.

The database makes each state change atomic, but it cannot tell a completion that is running in another live
process from one whose process was killed: both leave the record in ``completing``. A claim can — it is a lock
the operating system (or, later, PostgreSQL's advisory locks) drops the moment its process dies, SIGKILL
included. So:

* completion takes the upload's claim before its ``receiving → completing`` transition and keeps it to the end;
  a ``completing`` record whose claim is free was left by a dead process, and any replica may finish it;
* a tus PATCH holds its upload's write claim, so two replicas never append to one upload at once;
* creations under a drop link's limits are admitted one at a time across replicas;
* every live process holds the "alive" claim shared: a process that can take it exclusively is alone, and only
  then may start-up treat files without a record as a crash's leftovers at once.

``FileClaims`` keeps them as POSIX byte-range locks in one file beside the SQLite database (one machine, as SQLite
itself); ``LocalClaims`` is the single-process stand-in the engine's own tests use.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

from pyfiledrop.errors import UploadLocked

_ALIVE = 0  # byte 0 of the claims file: shared by every live process
_POLL_FIRST = 0.005  # seconds between tries for a busy claim, doubling up to _POLL_MOST
_POLL_MOST = 0.1
_SLOTS = 1 << 48  # a key's byte in the file: a collision only makes two keys wait for each other


class Claims(Protocol):
    async def take(self, key: str) -> bool:
        """Take ``key`` if no process (this one included) holds it; never waits."""
        ...

    async def give_back(self, key: str) -> None: ...

    async def begin(self) -> bool:
        """At start-up: join the live processes. True if there was none (this one is alone); then others wait in
        ``begin`` until ``started`` — start-up's recovery runs before any other replica serves."""
        ...

    async def started(self) -> None: ...

    async def alone(self) -> bool:
        """No other live process shares the stores (now)."""
        ...

    def close(self) -> None: ...


class LocalClaims:
    """One process only: claims are a set; it is always alone."""

    def __init__(self) -> None:
        self._held: set[str] = set()

    async def take(self, key: str) -> bool:
        if key in self._held:
            return False
        self._held.add(key)
        return True

    async def give_back(self, key: str) -> None:
        self._held.discard(key)

    async def begin(self) -> bool:
        return True

    async def started(self) -> None:
        return None

    async def alone(self) -> bool:
        return True

    def close(self) -> None:
        self._held.clear()


class FileClaims(LocalClaims):
    """Claims as ``fcntl`` record locks on one file: no file per upload, nothing to clean up, released by the
    kernel when the process ends. Each try is one system call, cheap enough for the event loop. Record locks
    belong to the process, so ``LocalClaims``' set keeps two tasks of this process apart."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    async def take(self, key: str) -> bool:
        if not await super().take(key):
            return False
        if _lock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, _slot(key)):
            return True
        await super().give_back(key)
        return False

    async def give_back(self, key: str) -> None:
        if key in self._held:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, _slot(key), os.SEEK_SET)
        await super().give_back(key)

    async def begin(self) -> bool:
        if _lock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, _ALIVE):
            return True
        delay = _POLL_FIRST
        for _ in range(int(600 / _POLL_MOST)):  # another replica's start-up recovery: bounded, it rehashes at worst
            if _lock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB, _ALIVE):
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MOST)
        raise TimeoutError(f"another process holds {self.path} exclusively for more than 10 minutes")

    async def started(self) -> None:
        fcntl.lockf(self._fd, fcntl.LOCK_SH, 1, _ALIVE, os.SEEK_SET)  # exclusive → shared: others may now join

    async def alone(self) -> bool:
        # A failed conversion keeps the shared lock this process holds; a successful one is turned back at once.
        if not _lock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, _ALIVE):
            return False
        fcntl.lockf(self._fd, fcntl.LOCK_SH, 1, _ALIVE, os.SEEK_SET)
        return True

    def close(self) -> None:
        super().close()
        os.close(self._fd)  # drops every lock this process holds on the file


@asynccontextmanager
async def holding(claims: Claims, key: str, wait: float, what: str) -> AsyncIterator[None]:
    """Hold ``key``, waiting up to ``wait`` seconds for whoever holds it; UploadLocked (423) after that."""
    delay = _POLL_FIRST
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while not await claims.take(key):
        if loop.time() >= deadline:
            raise UploadLocked(what)
        await asyncio.sleep(delay)
        delay = min(delay * 2, _POLL_MOST)
    try:
        yield
    finally:
        await claims.give_back(key)


def _slot(key: str) -> int:
    return 1 + int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest()) % _SLOTS


def _lock(fd: int, how: int, start: int) -> bool:
    try:
        fcntl.lockf(fd, how, 1, start, os.SEEK_SET)
    except (BlockingIOError, PermissionError):  # EAGAIN / EACCES: another process holds it
        return False
    return True
