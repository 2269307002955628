"""Bytes of one S3 part gathered before they are sent: in memory for small parts, else in the local spool folder.

The spool has a budget (``--s3-spool-max``), taken a whole part at a time: a write whose next part would pass it
waits for room (parts of other writes, or its own previous one, being sent), and gives up with StorageFull after
a while rather than wait for ever. Nothing in
the spool outlives its request: what another replica may need is staged in S3 (storage/s3_pieces.py).
"""

from __future__ import annotations

import asyncio
import io
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from pyfiledrop.errors import StorageFull
from pyfiledrop.units import MIB

IN_MEMORY = 16 * MIB  # parts up to this size are gathered in memory
WAIT_SECONDS = 300.0  # how long a write waits for room in a full spool (others' parts are being sent meanwhile)


class Budget:
    """Bytes the spool folder may hold, shared by every write of this process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._room = asyncio.Condition()

    async def take(self, n: int) -> None:
        async with self._room:
            try:
                # Alone, a write may take more than the budget: otherwise a part larger than it could never go.
                await asyncio.wait_for(self._room.wait_for(lambda: self.used == 0 or self.used + n <= self.limit),
                                       WAIT_SECONDS)  # fmt: skip
            except TimeoutError:
                raise StorageFull(f"the S3 spool is full ({self.used} of {self.limit} bytes in use)") from None
            self.used += n

    async def give(self, n: int) -> None:
        async with self._room:
            self.used -= n
            self._room.notify_all()


class PartBuffer:
    """The bytes of one part (or piece of one): a list of blocks in memory, or a file in the spool folder."""

    def __init__(self, start: int, capacity: int, spool: Path, budget: Budget) -> None:
        self.start = start  # upload offset of the first byte
        self.size = 0
        self.capacity = capacity
        self._blocks: list[bytes] | None = [] if capacity <= IN_MEMORY else None
        self._file: BinaryIO | None = None
        self._spool = spool
        self._budget = budget
        self._taken = 0

    @property
    def end(self) -> int:
        return self.start + self.size

    async def add(self, data: bytes) -> None:
        if self._blocks is not None:
            self._blocks.append(data)
        else:
            if not self._taken:  # the whole part at once: a writer never waits on bytes it holds itself
                await self._budget.take(self.capacity)
                self._taken = self.capacity
            await asyncio.to_thread(self._write, data)
        self.size += len(data)

    def _write(self, data: bytes) -> None:
        if self._file is None:
            self._spool.mkdir(parents=True, exist_ok=True)
            self._file = tempfile.TemporaryFile(dir=self._spool)  # noqa: SIM115 - closed by close(); no name: a crash leaves nothing
        self._file.write(data)

    def blocks(self) -> list[bytes]:
        """The blocks held in memory ([] for a spooled buffer): what the hash sees."""
        return list(self._blocks or [])

    def body(self) -> BinaryIO:
        """A readable, seekable body for the client (in a worker thread: a spooled one is read from disk)."""
        if self._blocks is not None:
            return io.BytesIO(b"".join(self._blocks))
        assert self._file is not None
        self._file.flush()
        self._file.seek(0)
        return self._file

    def observe_file(self, observe: object) -> None:
        """Let a batch observer see a spooled buffer's bytes, block by block (in a worker thread)."""
        if self._file is None or not callable(observe):
            return
        self._file.flush()
        position = 0
        while position < self.size:
            block = os.pread(self._file.fileno(), min(4 * MIB, self.size - position), position)
            if not block:
                break
            observe([block])
            position += len(block)

    async def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._taken:
            await self._budget.give(self._taken)
            self._taken = 0
        self._blocks = []
