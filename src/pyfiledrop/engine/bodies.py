"""Request bodies on their way to storage: held to the room the upload has left, and seen by the hashes.

``limited`` keeps a body from writing past the end of its upload (a body that fills buffers keeps the storage's
fast path); ``Hashers`` feeds each written batch to the prefix hash and a client's checksum in the writing thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import cast

from pyfiledrop.domain.checksum import Hasher
from pyfiledrop.engine.hashing import InlineClaim
from pyfiledrop.errors import BadRequest, PyfiledropError, TooLarge
from pyfiledrop.storage.base import Fillable, FillTarget, Pumpable, ReadObserver


class Hashers:
    """Runs in a worker thread with each batch, beside the thread that writes it."""

    def __init__(self, claim: InlineClaim | None, checksum: Hasher | None) -> None:
        self.claim = claim
        self.checksum = checksum

    def observe(self, batch: Sequence[bytes]) -> None:
        if self.claim is not None:
            self.claim.observe(batch)
        if self.checksum is not None:
            for piece in batch:
                self.checksum.update(piece)


def limited(body: AsyncIterator[bytes], room: int, size_known: bool, max_bytes: int) -> AsyncIterator[bytes]:
    """Pass the body through, refusing to write past the end of the upload."""
    if isinstance(body, Fillable):
        return _LimitedFill(body, room, size_known, max_bytes)
    return _limited_pieces(body, room, size_known, max_bytes)


def _too_long(size_known: bool, max_bytes: int) -> PyfiledropError:
    if size_known:
        return BadRequest("the body is longer than announced or goes past the end of the upload")
    return TooLarge(max_bytes)


async def _limited_pieces(
    body: AsyncIterator[bytes], room: int, size_known: bool, max_bytes: int
) -> AsyncIterator[bytes]:
    async for piece in body:
        if len(piece) > room:
            raise _too_long(size_known, max_bytes)
        room -= len(piece)
        yield piece


class _LimitedFill:
    """``limited`` for a body that fills buffers: the storage keeps its fast path."""

    def __init__(self, body: Fillable, room: int, size_known: bool, max_bytes: int) -> None:
        self.body = body
        self.room = room
        self.size_known = size_known
        self.max_bytes = max_bytes
        self.pieces = _limited_pieces(cast(AsyncIterator[bytes], body), room, size_known, max_bytes)

    def __aiter__(self) -> _LimitedFill:
        return self

    async def __anext__(self) -> bytes:
        return await anext(self.pieces)

    async def readinto(self, view: memoryview, observe: ReadObserver | None = None) -> int:
        if self.room == 0:
            return await self._end(len(view))
        n = await self.body.readinto(view[: self.room], observe)
        self.room -= n
        return n

    async def pump(self, target: FillTarget) -> int | None:
        if not isinstance(self.body, Pumpable):
            return None
        if self.room == 0:
            return await self._end(1)
        roomy = _RoomTarget(target, self.room)
        n = await self.body.pump(roomy)
        self.room = roomy.room
        return n

    async def _end(self, wanted: int) -> int:
        if wanted and await self.body.readinto(memoryview(bytearray(1))):
            raise _too_long(self.size_known, self.max_bytes)  # the body goes on past the room it has
        return 0


class _RoomTarget:
    """A fill target that hands out no more than ``room`` bytes of views in all (the rest of the upload)."""

    def __init__(self, target: FillTarget, room: int) -> None:
        self.target = target
        self.room = room

    def next_view(self) -> memoryview | None:
        if self.room == 0:
            return None
        view = self.target.next_view()
        return None if view is None else view[: self.room]

    def filled(self, n: int) -> None:
        self.room -= n
        self.target.filled(n)


async def drain(body: AsyncIterator[bytes]) -> None:
    async for _ in body:
        pass
