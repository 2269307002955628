"""The engine under the parallel-write extension: regions of one upload written at once, cut off, crashed and
resumed from the received ranges, always give the exact file and its sha256."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from pyfiledrop.engine.service import Chunk
from pyfiledrop.errors import ClientDisconnected
from tests.faults.crashkit import Content, check_storage
from tests.faults.enginekit import Crash, body, new, running, sha256

SIZE = 1_000_003
REGIONS = [(0, 250_000), (250_000, 600_000), (600_000, SIZE)]


def region_chunk(data: bytes, start: int, end: int, **cut: object) -> Chunk:
    return Chunk(start, body(data[start:end], **cut), end - start)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(6))
def test_regions_cut_off_and_crashed_then_resumed_give_the_exact_file(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    data = rng.randbytes(SIZE)
    content = Content(0, data, sha256(data))
    kill_region = rng.randrange(len(REGIONS))

    async def first_run() -> str:
        async with running(tmp_path) as e:
            upload = await e.service.create(new(0, SIZE))
            writes = []
            for index, (start, end) in enumerate(REGIONS):
                cut = rng.randrange(end - start)
                error: BaseException = Crash() if index == kill_region else ClientDisconnected()
                writes.append(e.service.write(upload.id, region_chunk(data, start, end, fail_after=cut, exc=error)))
            results = await asyncio.gather(*writes, return_exceptions=True)
            assert any(isinstance(r, Crash) for r in results)
            return upload.id

    async def resume(upload_id: str) -> None:
        async with running(tmp_path) as e:
            upload = await e.service.status(upload_id)  # type: ignore[arg-type]
            assert check_storage(tmp_path, [content]) == []  # every recorded byte is right
            sends = []
            for start, end in REGIONS:  # each region from where its received run ends, as the client does
                done = next((e_ for s, e_ in upload.received if s <= start <= e_), start)
                if done < end:
                    sends.append(e.service.write(upload.id, region_chunk(data, done, end)))
            await asyncio.gather(*sends)
            finished = await e.service.status(upload_id)  # type: ignore[arg-type]
            assert finished.sha256 == content.sha256

    upload_id = asyncio.run(first_run())
    asyncio.run(resume(upload_id))
    assert check_storage(tmp_path, [content]) == []
