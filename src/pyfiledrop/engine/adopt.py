"""A file made on the server (a video job's copy) becomes a new upload, as if its owner had sent it.

Its bytes go the way of any upload's body (``UploadService.write``): limits and quotas apply, they are hashed as
they pass, deduplicated, recorded and renamed into place exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from pyfiledrop.domain.model import Upload
from pyfiledrop.engine.service import Chunk, NewUpload, UploadService
from pyfiledrop.errors import PyfiledropError

_BLOCK = 4 << 20  # bytes read per step: few thread hand-offs, little memory


async def create_from_file(service: UploadService, request: NewUpload, path: Path) -> Upload:
    """Record ``path``'s bytes as a new complete upload (``request`` names it and its owner); the file stays."""
    size = (await asyncio.to_thread(path.stat)).st_size
    upload = await service.create(replace(request, size=size))
    try:
        return await service.write(upload.id, Chunk(0, _read(path, size), length=size))
    except BaseException:
        with contextlib.suppress(PyfiledropError, OSError):
            await service.terminate(upload.id)  # nothing half-made stays listed
        raise


async def _read(path: Path, size: int) -> AsyncIterator[bytes]:
    fd = await asyncio.to_thread(os.open, path, os.O_RDONLY)
    try:
        position = 0
        while position < size:
            block = await asyncio.to_thread(os.pread, fd, min(_BLOCK, size - position), position)
            if not block:
                raise OSError(f"{path.name} is shorter than its {size} bytes")
            position += len(block)
            yield block
    finally:
        os.close(fd)
