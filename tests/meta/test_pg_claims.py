"""Claims on PostgreSQL (meta/pg_claims.py) across real processes, as engine/claims.py's tests do for the file
locks: what one process holds another cannot take, a SIGKILL frees it (the server ends the dead session), the
"alive" claim tells whether a process is alone, and start-up recovery leaves a live replica's completion alone."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pyfiledrop.domain.model import Protocol, UploadState
from pyfiledrop.engine.claims import Claims, holding
from pyfiledrop.engine.lifecycle import Lifecycle
from pyfiledrop.engine.service import Limits, NewUpload, UploadService
from pyfiledrop.errors import UploadLocked
from pyfiledrop.meta.pg_claims import PostgresClaims, lock_key
from pyfiledrop.meta.postgres import PostgresMetadataStore
from pyfiledrop.storage.local import LocalStorage
from tests.holders import holders

_HOLDER = textwrap.dedent("""
    import asyncio, sys
    from pyfiledrop.meta.pg_claims import PostgresClaims

    async def main() -> None:
        claims = PostgresClaims(sys.argv[1])
        await claims.begin()
        await claims.started()
        for key in sys.argv[2:]:
            assert await claims.take(key), key
        print("holding", flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
""")

Holder = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def holder(postgres_url: str) -> Iterator[Holder]:
    """Started by ``hold(*keys)``: another live process holding the given claims in the test's database."""
    yield from holders(_HOLDER, postgres_url)


def kill(process: subprocess.Popen[str]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


async def until_free(claims: PostgresClaims, key: str) -> bool:
    """The server notices a killed client's closed socket at once, but ends its session a moment later."""
    for _ in range(200):
        if await claims.take(key):
            return True
        await asyncio.sleep(0.05)
    return False


def test_a_claim_held_by_another_process_is_refused_until_that_process_is_killed(
    postgres_url: str, holder: Holder
) -> None:
    process = holder("upload-1")

    async def main() -> None:
        claims = PostgresClaims(postgres_url)
        try:
            assert await claims.begin() is False  # another process is live
            await claims.started()
            assert not await claims.alone()
            assert not await claims.take("upload-1")
            assert await claims.take("upload-2")  # other keys are free
            assert not await claims.take("upload-2")  # a key held here is not taken twice (locks are re-entrant)
            with pytest.raises(UploadLocked):
                async with holding(claims, "upload-1", 0.2, "upload-1"):
                    pass
            kill(process)
            assert await until_free(claims, "upload-1")  # the server dropped the dead session's locks
            assert await claims.alone()
            await claims.give_back("upload-1")
            await claims.give_back("upload-2")
        finally:
            claims.close()

    asyncio.run(main())


def test_given_back_and_closed_claims_are_free_for_others(postgres_url: str) -> None:
    async def main() -> None:
        first, second = PostgresClaims(postgres_url), PostgresClaims(postgres_url)
        try:
            assert await first.begin() is True  # alone: start-up recovery runs before others join
            joining = asyncio.create_task(second.begin())
            await asyncio.sleep(0.3)
            assert not joining.done()  # the second waits while the first's start-up runs
            await first.started()
            assert await asyncio.wait_for(joining, 10) is False
            await second.started()
            assert not await first.alone() and not await second.alone()
            assert await first.take("k")
            assert not await second.take("k")
            await first.give_back("k")
            assert await second.take("k")
            second.close()  # a clean exit: its session and every claim in it end
            assert await until_free(first, "k")
            assert await first.alone()
        finally:
            first.close()
            second.close()

    asyncio.run(main())


def test_lock_keys_are_stable_and_distinct() -> None:
    assert lock_key("upload-1") == lock_key("upload-1")
    assert lock_key("upload-1") != lock_key("upload-2")
    assert -(1 << 63) <= lock_key("x") < (1 << 63)


def test_start_up_leaves_a_live_replicas_completion_alone_until_it_dies(
    tmp_path: Path, postgres_url: str, holder: Holder
) -> None:
    """An upload ``completing`` whose claim a live process holds is not resumed at start-up; once that process is
    killed, the next start-up finishes it."""
    (tmp_path / ".partial").mkdir()

    def service(claims: Claims) -> tuple[UploadService, PostgresMetadataStore]:
        storage = LocalStorage(tmp_path, tmp_path / ".partial", fsync_chunks=False, fsync_files=False)
        meta = PostgresMetadataStore(postgres_url)
        return UploadService(storage, meta, Limits(1 << 30), claims=claims), meta

    async def prepare() -> str:
        engine, meta = service(PostgresClaims(postgres_url))
        await meta.open()
        try:
            created = await engine.create(NewUpload("f.bin", "o", 4, Protocol.TUS))
            await meta.record_range(created.id, 0, 4)
            await meta.transition(created.id, UploadState.COMPLETING, expect=UploadState.RECEIVING)
            return created.id
        finally:
            await meta.close()
            engine.claims.close()

    upload_id = asyncio.run(prepare())
    (tmp_path / ".partial" / f"{upload_id}.part").write_bytes(b"abcd")
    process = holder(upload_id)

    async def start() -> UploadState:
        engine, meta = service(PostgresClaims(postgres_url))
        await meta.open()
        try:
            await Lifecycle(engine, stale_after=3600).on_startup()
            return (await meta.get(upload_id)).state  # type: ignore[arg-type]
        finally:
            await meta.close()
            engine.claims.close()

    assert asyncio.run(start()) is UploadState.COMPLETING
    kill(process)
    for _ in range(100):  # the dead session ends a moment after the kill
        state = asyncio.run(start())
        if state is not UploadState.COMPLETING:
            break
    assert state is UploadState.COMPLETE
