"""One streaming writer per upload for protocols that append (tus PATCH, PUT).

A client that lost its connection comes back while the server may still be waiting on the dead one.
Like tusd, the newcomer asks the old request to stop, waits for it to record what it wrote, then goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.errors import UploadLocked

_TAKEOVER_WAIT_SECONDS = 10.0


@dataclass
class Lease:
    task: asyncio.Task[object] | None
    released: asyncio.Event = field(default_factory=asyncio.Event)
    taken_over: bool = False


class Leases:
    def __init__(self) -> None:
        self._held: dict[UploadId, Lease] = {}

    @asynccontextmanager
    async def hold(self, upload_id: UploadId) -> AsyncIterator[Lease]:
        while (current := self._held.get(upload_id)) is not None:
            current.taken_over = True
            if current.task is not None:
                current.task.cancel()
            try:
                await asyncio.wait_for(current.released.wait(), _TAKEOVER_WAIT_SECONDS)
            except TimeoutError as exc:
                raise UploadLocked(upload_id) from exc
        lease = Lease(asyncio.current_task())
        self._held[upload_id] = lease
        try:
            yield lease
        finally:
            del self._held[upload_id]
            lease.released.set()


class RangeLocks:
    """Byte ranges being written right now, per upload (Dropzone sends chunks in parallel, retries included).

    A request for bytes another request is still writing waits for it, then looks again: usually the bytes are
    there by then and the retry is answered without writing, so two bodies never race for the same bytes.
    """

    def __init__(self) -> None:
        self._busy: dict[UploadId, list[tuple[int, int, asyncio.Event]]] = {}

    def busy(self, upload_id: UploadId, start: int, end: int) -> asyncio.Event | None:
        for s, e, done in self._busy.get(upload_id, ()):
            if s < end and start < e:
                return done
        return None

    @asynccontextmanager
    async def hold(self, upload_id: UploadId, start: int, end: int) -> AsyncIterator[None]:
        entry = (start, end, asyncio.Event())
        self._busy.setdefault(upload_id, []).append(entry)
        try:
            yield
        finally:
            held = self._busy[upload_id]
            held.remove(entry)
            if not held:
                del self._busy[upload_id]
            entry[2].set()
