"""The whole-file sha256, computed while bytes arrive so completion does not re-read a cold file.

sha256 is sequential, so each upload keeps one hasher that has consumed exactly ``[0, upto)``. A write
that starts at ``upto`` feeds it inline (each buffer is hashed by the thread that read it from the socket);
bytes that arrived out of order are read back from the file once they are recorded behind the contiguous
prefix (``catch_up``, one pass that reads on while more chunks are recorded).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.storage.base import Storage


@dataclass
class _PrefixHash:
    hasher: hashlib._Hash = field(default_factory=lambda: hashlib.sha256(usedforsecurity=False))
    upto: int = 0
    busy: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # A running catch-up reads on while the recorded prefix grows: ``target`` is how far it may go, raised by the
    # calls that find it running (``scanning``); both change under ``guard`` (the scan asks from a worker thread).
    target: int = 0
    scanning: bool = False
    guard: threading.Lock = field(default_factory=threading.Lock)


class InlineClaim:
    """A writer's right to feed the prefix hasher; rolled back if its bytes are not kept."""

    def __init__(self, state: _PrefixHash) -> None:
        self._state = state
        self._saved = state.hasher.copy()
        self._saved_upto = state.upto

    def observe(self, batch: Sequence[bytes]) -> None:
        for piece in batch:
            self._state.hasher.update(piece)
            self._state.upto += len(piece)

    def keep(self, upto: int) -> None:
        """The bytes up to ``upto`` were recorded; anything hashed beyond them is undone."""
        if upto != self._state.upto:
            self.rollback()
        self._state.busy = False

    def rollback(self) -> None:
        self._state.hasher = self._saved
        self._state.upto = self._saved_upto
        self._state.busy = False


class PrefixHashes:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._states: dict[UploadId, _PrefixHash] = {}

    def claim(self, upload_id: UploadId, offset: int) -> InlineClaim | None:
        state = self._states.setdefault(upload_id, _PrefixHash())
        if state.busy or state.upto != offset:
            return None
        state.busy = True
        return InlineClaim(state)

    async def catch_up(self, upload_id: UploadId, prefix: int) -> int:
        """Hash the file from where the hasher stands up to ``prefix`` (bytes recorded: they never change); return
        how far it got. A catch-up already running is told to go on to ``prefix`` instead: one pass keeps its
        read-ahead going while chunks are recorded behind each other."""
        state = self._states.setdefault(upload_id, _PrefixHash())
        with state.guard:
            state.target = max(state.target, prefix)
            if state.scanning:
                return state.upto
        async with state.lock:
            if state.busy or state.upto >= prefix:
                return state.upto
            state.busy = True

            def observe(block: memoryview) -> None:  # in a worker thread, one at a time
                state.hasher.update(block)
                state.upto += len(block)

            def until(position: int) -> int:  # in a worker thread: where this pass may read to now
                with state.guard:
                    if state.target <= position:
                        state.scanning = False  # from here on, a new prefix starts a new pass
                    return state.target

            with state.guard:
                state.scanning = True
            try:
                await self._storage.scan_partial(upload_id, state.upto, until, observe)
            finally:
                with state.guard:
                    state.scanning = False
                state.busy = False
            return state.upto

    async def digest(self, upload_id: UploadId, size: int) -> str:
        """The sha256 of ``[0, size)``, waiting for an inline writer to finish if one is running."""
        for _ in range(6000):  # an inline writer finishes its last batch within moments
            upto = await self.catch_up(upload_id, size)
            if upto == size:
                return self._states[upload_id].hasher.hexdigest()
            if upto > size:
                break
            await asyncio.sleep(0.005)
        # Inconsistent state (e.g. more bytes hashed than the size): start again from the file.
        self._states[upload_id] = _PrefixHash()
        await self.catch_up(upload_id, size)
        return self._states[upload_id].hasher.hexdigest()

    def forget(self, upload_id: UploadId) -> None:
        self._states.pop(upload_id, None)

    def held(self) -> list[UploadId]:
        """Uploads this process keeps a hash state for."""
        return list(self._states)
