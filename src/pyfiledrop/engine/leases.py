"""One streaming writer per upload for protocols that append (tus PATCH, PUT).

A client that lost its connection comes back while the server may still be waiting on the dead one.
Like tusd, the newcomer asks the old request to stop, waits for it to record what it wrote, then goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from pyfiledrop.engine.ids import UploadId
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
