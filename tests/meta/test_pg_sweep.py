"""The sweep of several replicas on one PostgreSQL database (engine/lifecycle.py with ``claim_stale`` and
``claim_expired``): two sweeps at once split the stale and expired uploads between them — each upload is
terminated by exactly one of them, none twice, none left."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.domain.model import Protocol, UploadState
from pyfiledrop.engine.claims import LocalClaims
from pyfiledrop.engine.lifecycle import ClaimingStore, Lifecycle
from pyfiledrop.engine.service import Chunk, Limits, NewUpload, UploadService
from pyfiledrop.meta.postgres import PostgresMetadataStore
from pyfiledrop.storage.local import LocalStorage
from tests.engine.test_service import pieces

STALE, EXPIRED = 30, 10
STALE_AFTER = 1.0  # seconds (a claimed record looks fresh for minutes: ``now`` must be the real time)


class Recording(UploadService):
    """A replica's engine that remembers what its sweep terminated."""

    terminated: list[UploadId]

    async def terminate(self, upload_id: UploadId, why: str | None = None) -> None:
        self.terminated.append(upload_id)
        await super().terminate(upload_id, why)


def test_two_replicas_sweeping_at_once_never_terminate_one_upload_twice(tmp_path: Path, postgres_url: str) -> None:
    (tmp_path / ".partial").mkdir()

    async def main() -> None:
        engines: list[Recording] = []
        for _ in range(2):
            meta = PostgresMetadataStore(postgres_url)
            await meta.open()
            storage = LocalStorage(tmp_path, tmp_path / ".partial", fsync_chunks=False, fsync_files=False)
            engine = Recording(storage, meta, Limits(1 << 30), claims=LocalClaims())
            engine.terminated = []
            engines.append(engine)
        a, b = engines
        try:
            assert isinstance(a.meta, ClaimingStore)
            stale = [(await a.create(NewUpload(f"s{n}.bin", "o", 4, Protocol.TUS))).id for n in range(STALE)]
            expired = []
            for n in range(EXPIRED):
                created = await a.create(NewUpload(f"e{n}.bin", "o", 4, Protocol.TUS))
                await a.write(created.id, Chunk(0, pieces(b"ab%02d" % n), 4, exact_offset=True))
                await a.meta.update_fields(created.id, expires_at=1.0)
                expired.append(created.id)
            await asyncio.sleep(STALE_AFTER + 0.1)  # every unfinished upload is idle past --stale-after now
            dropped = await asyncio.gather(*(Lifecycle(engine, stale_after=STALE_AFTER).sweep() for engine in engines))
            assert sum(dropped) == STALE + EXPIRED
            assert not set(a.terminated) & set(b.terminated)  # never both on one upload
            assert sorted(a.terminated + b.terminated) == sorted(stale + expired)
            states = {(await a.meta.get(upload_id)).state for upload_id in stale + expired}
            assert states == {UploadState.TERMINATED}
        finally:
            for engine in engines:
                await engine.meta.close()

    asyncio.run(main())
