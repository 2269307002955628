"""A request body as a socket gives it: read in pieces or into buffers (``storage.base.Fillable``), short counts."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any


class SocketLike:
    def __init__(self, data: bytes, rng: random.Random, read_sizes: tuple[int, ...], piece_max: int = 3000) -> None:
        self.data = memoryview(data)
        self.rng = rng
        self.read_sizes = read_sizes  # each readinto gives at most one of these, chosen at random
        self.piece_max = piece_max

    def __aiter__(self) -> SocketLike:
        return self

    async def __anext__(self) -> bytes:
        if not self.data:
            raise StopAsyncIteration
        n = self.rng.randint(1, self.piece_max)
        piece, self.data = bytes(self.data[:n]), self.data[n:]
        await asyncio.sleep(0)
        return piece

    async def readinto(self, view: memoryview, observe: Callable[[memoryview], None] | None = None) -> int:
        n = min(len(view), len(self.data), self.rng.choice(self.read_sizes))
        view[:n] = self.data[:n]
        self.data = self.data[n:]
        if observe is not None and n:  # as the server does: in the thread that read, or on the loop
            if self.rng.random() < 0.5:
                await asyncio.to_thread(observe, view[:n])
            else:
                observe(view[:n])
        await asyncio.sleep(0)
        return n


class PumpingSocketLike(SocketLike):
    """Also ``pump`` (``storage.base.Pumpable``), as the server's: in a worker thread, view after view — filled in
    odd sizes; now and then it stops after a view or two, or says it cannot pump (the caller uses readinto)."""

    async def pump(self, target: Any) -> int | None:
        if self.rng.random() < 0.2:
            return None
        return await asyncio.to_thread(self._pump, target, self.rng.choice((1, 2, 1_000_000)))

    def _pump(self, target: Any, views: int) -> int:
        total = 0
        for _ in range(views):
            if not self.data:
                break
            view = target.next_view()
            if view is None:
                break
            n = min(len(view), len(self.data), self.rng.choice(self.read_sizes))
            view[:n] = self.data[:n]
            self.data = self.data[n:]
            target.filled(n)
            total += n
        return total
