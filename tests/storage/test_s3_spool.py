"""Large parts are gathered in the spool folder within its budget, and nothing stays there."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from pyfiledrop.domain.ids import new_upload_id
from pyfiledrop.errors import StorageFull
from pyfiledrop.storage import spool
from pyfiledrop.storage.spool import Budget
from pyfiledrop.units import MIB
from tests.storage.conftest import body_of, s3_storage
from tests.weed import S3Server


def test_parts_larger_than_memory_go_through_the_spool(s3_server: S3Server, tmp_path: Path) -> None:
    data = os.urandom(40 * MIB + 3)
    folder = tmp_path / "spool"
    storage = s3_storage(s3_server, s3_server.new_bucket(), folder, align=24 * MIB, spool_max=8 * MIB)
    seen: list[int] = []

    async def main() -> None:
        upload_id = new_upload_id()
        await storage.allocate(upload_id, len(data))
        hasher = hashlib.sha256()

        def observe(batch: list[bytes]) -> None:
            for block in batch:
                hasher.update(block)
            seen.append(storage.budget.used)

        await storage.write(upload_id, 0, body_of(data, MIB), observe)  # type: ignore[arg-type]
        assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()
        await storage.seal(upload_id, len(data))
        blob = await storage.finalize(upload_id, "big.bin", len(data))
        assert b"".join([b async for b in storage.read(blob)]) == data
        assert storage.budget.used == 0  # every spooled byte given back

    try:
        asyncio.run(main())
    finally:
        storage.close()
    assert max(seen) == 24 * MIB  # a 24 MiB part was held in the spool (alone: past the 8 MiB budget)
    assert list(folder.iterdir()) == []  # unnamed temporary files: nothing left


def test_the_budget_makes_a_second_writer_wait_then_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool, "WAIT_SECONDS", 0.3)

    async def main() -> None:
        budget = Budget(10)
        await budget.take(8)
        waiting = asyncio.ensure_future(budget.take(5))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # 8 + 5 is over 10: waits
        await budget.give(8)
        await waiting
        assert budget.used == 5
        with pytest.raises(StorageFull):
            await budget.take(6)  # never room while the 5 are held

    asyncio.run(main())
