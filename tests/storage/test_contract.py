"""One contract for every storage backend: the local disk and S3 (a real SeaweedFS), through the Storage protocol."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from pyfiledrop.domain.ids import new_upload_id
from pyfiledrop.errors import ClientDisconnected
from pyfiledrop.storage.base import WriteProgress
from pyfiledrop.storage.s3 import S3Storage
from pyfiledrop.units import MIB
from tests.storage.conftest import body_of

SIZE = 12 * MIB + 12_345  # three 5 MiB parts on S3, the last one short
CHUNK = 3 * MIB + 7  # chunks that do not line up with parts: staging on S3


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def read_all(storage: Any, blob: Any, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([block async for block in storage.read(blob, start, end)])


async def scanned(storage: Any, upload_id: Any, size: int) -> str:
    hasher = hashlib.sha256()
    await storage.scan_partial(upload_id, 0, size, hasher.update)
    return hasher.hexdigest()


async def write_chunks(storage: Any, upload_id: Any, data: bytes, offsets: list[int], chunk: int) -> None:
    for offset in offsets:
        part = data[offset : offset + chunk]
        assert await storage.write(upload_id, offset, body_of(part)) == len(part)


def offsets_of(size: int, chunk: int) -> list[int]:
    return list(range(0, size, chunk))


async def sealed_right_and_deleted(storage: Any, upload_id: Any, data: bytes, name: str) -> None:
    """Seal, read back the sha256 of the unfinished bytes, finalize, read the blob whole, delete it."""
    await storage.seal(upload_id, len(data))
    assert await scanned(storage, upload_id, len(data)) == hashlib.sha256(data).hexdigest()
    blob = await storage.finalize(upload_id, name, len(data))
    assert await read_all(storage, blob) == data
    await storage.delete_blob(blob)


def nothing_left(storage: Any) -> bool:
    if isinstance(storage, S3Storage):
        server_keys = all_keys_of(storage)
        return not server_keys and not open_multiparts_of(storage)
    return not list(storage.chunks_dir.glob("*.part"))


def all_keys_of(storage: S3Storage) -> list[str]:
    return [k for k, _ in _listing(storage)]


def _listing(storage: S3Storage) -> list[tuple[str, float]]:
    from pyfiledrop.storage.s3_pieces import list_keys

    return list_keys(storage.calls.client, storage.bucket, "")


def open_multiparts_of(storage: S3Storage) -> list[str]:
    answer = storage.calls.client.list_multipart_uploads(Bucket=storage.bucket)
    return [u["Key"] for u in answer.get("Uploads", [])]


def test_in_order_chunks_finalize_to_the_exact_bytes_and_ranges_read_back(backend: Callable[[], Any]) -> None:
    storage = backend()
    data = os.urandom(SIZE)

    async def main() -> None:
        upload_id = new_upload_id()
        await storage.allocate(upload_id, SIZE)
        hasher = hashlib.sha256()
        for offset in offsets_of(SIZE, CHUNK):
            part = data[offset : offset + CHUNK]
            observed = await storage.write(
                upload_id, offset, body_of(part), lambda batch: [hasher.update(b) for b in batch]
            )
            assert observed == len(part)
        assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()  # every byte seen once, in order
        await storage.seal(upload_id, SIZE)
        blob = await storage.finalize(upload_id, "f.bin", SIZE)
        assert await storage.exists(blob) and storage.holds(blob)
        assert await read_all(storage, blob) == data
        for start, end in ((0, 1), (5 * MIB - 3, 5 * MIB + 3), (SIZE - 10, SIZE), (1234, 9 * MIB)):
            assert await read_all(storage, blob, start, end) == data[start:end]
        await storage.delete_blob(blob)
        assert not await storage.exists(blob)

    run(main())
    assert nothing_left(storage)


def test_out_of_order_and_parallel_chunks_hash_to_the_file_after_seal(backend: Callable[[], Any]) -> None:
    storage = backend()
    data = os.urandom(SIZE)
    offsets = offsets_of(SIZE, CHUNK)
    random.Random(3).shuffle(offsets)

    async def main() -> None:
        upload_id = new_upload_id()
        await storage.allocate(upload_id, SIZE)
        await asyncio.gather(*(write_chunks(storage, upload_id, data, [offset], CHUNK) for offset in offsets))
        await sealed_right_and_deleted(storage, upload_id, data, "f.bin")

    run(main())
    assert nothing_left(storage)


def test_a_cut_request_keeps_what_arrived_and_the_upload_resumes(backend: Callable[[], Any]) -> None:
    storage = backend()
    data = os.urandom(SIZE)

    async def cut_after(n: int) -> AsyncIterator[bytes]:
        async for block in body_of(data[:n]):
            yield block
        raise ClientDisconnected()

    async def main() -> None:
        upload_id = new_upload_id()
        await storage.allocate(upload_id, SIZE)
        progress = WriteProgress()
        with pytest.raises(ClientDisconnected):
            await storage.write(upload_id, 0, cut_after(7 * MIB + 5), progress=progress)
        kept = progress.written
        assert kept == 7 * MIB + 5  # everything that arrived was staged before the failure was passed on
        await storage.write(upload_id, kept, body_of(data[kept:]))
        await sealed_right_and_deleted(storage, upload_id, data, "f.bin")

    run(main())
    assert nothing_left(storage)


def test_concat_of_finished_parts_of_any_size(backend: Callable[[], Any]) -> None:
    storage = backend()
    sizes = [6 * MIB + 1, 3, 2 * MIB, 5 * MIB + 17]  # parts under 5 MiB are joined with their neighbours
    datas = [os.urandom(size) for size in sizes]

    async def main() -> None:
        ids = []
        for data in datas:
            part_id = new_upload_id()
            await storage.allocate(part_id, len(data))
            await storage.write(part_id, 0, body_of(data))
            ids.append(part_id)
        final = new_upload_id()
        total = sum(sizes)
        await storage.allocate(final, total)
        await storage.concat(final, list(zip(ids, sizes, strict=True)))
        await storage.seal(final, total)
        assert await scanned(storage, final, total) == hashlib.sha256(b"".join(datas)).hexdigest()
        blob = await storage.finalize(final, "joined.bin", total)
        assert await read_all(storage, blob) == b"".join(datas)
        for part_id in ids:
            await storage.discard(part_id)
        await storage.delete_blob(blob)

    run(main())
    assert nothing_left(storage)


def test_discard_leaves_nothing_behind(backend: Callable[[], Any]) -> None:
    storage = backend()
    data = os.urandom(SIZE)

    async def main() -> None:
        upload_id = new_upload_id()
        await storage.allocate(upload_id, SIZE)
        await write_chunks(storage, upload_id, data, [CHUNK, 3 * CHUNK], CHUNK)  # staged pieces, a sent part
        assert upload_id in await storage.partial_ids()
        await storage.discard(upload_id)
        assert upload_id not in await storage.partial_ids()
        await storage.discard(upload_id)  # twice: no error

    run(main())
    assert nothing_left(storage)


def test_deferred_length_upload_is_sealed_once_its_size_is_known(backend: Callable[[], Any]) -> None:
    storage = backend()
    data = os.urandom(9 * MIB + 99)

    async def main() -> None:
        upload_id = new_upload_id()
        await storage.allocate(upload_id, None)
        await write_chunks(storage, upload_id, data, offsets_of(len(data), 2 * MIB), 2 * MIB)
        await sealed_right_and_deleted(storage, upload_id, data, "later.bin")

    run(main())
    assert nothing_left(storage)


def test_empty_and_whole_uploads(backend: Callable[[], Any]) -> None:
    storage = backend()

    async def main() -> None:
        empty = new_upload_id()
        await storage.allocate(empty, 0)
        await storage.seal(empty, 0)
        blob = await storage.finalize(empty, "empty", 0)
        assert await storage.exists(blob) and await read_all(storage, blob) == b""
        await storage.delete_blob(blob)
        data = os.urandom(100_000)
        whole = new_upload_id()
        with storage.whole_buffer(len(data)) as view:
            view[:] = data
            stored = await storage.store_whole(whole, "small.txt", view)
        assert stored.sha256 == hashlib.sha256(data).hexdigest()
        assert await read_all(storage, stored.blob, 10, 20) == data[10:20]
        await storage.delete_blob(stored.blob)

    run(main())
    assert nothing_left(storage)


def test_two_replicas_share_one_upload_through_staging(backend: Callable[[], Any]) -> None:
    first, second = backend(), backend()  # two instances, as two processes behind a load balancer
    data = os.urandom(SIZE)

    async def main() -> None:
        upload_id = new_upload_id()
        await first.allocate(upload_id, SIZE)
        await first.write(upload_id, 0, body_of(data[:CHUNK]))  # ends inside part 1: staged
        await second.write(upload_id, CHUNK, body_of(data[CHUNK:]))  # completes part 1 elsewhere
        await first.seal(upload_id, SIZE)
        assert await scanned(second, upload_id, SIZE) == hashlib.sha256(data).hexdigest()
        blob = await first.finalize(upload_id, "f.bin", SIZE)
        assert await read_all(second, blob) == data
        await second.delete_blob(blob)

    run(main())
    assert nothing_left(first)


def test_unrecorded_uploads_are_found_and_cleaned(backend: Callable[[], Any]) -> None:
    storage = backend()

    async def main() -> None:
        orphan = new_upload_id()
        await storage.allocate(orphan, SIZE)
        await storage.write(orphan, 0, body_of(os.urandom(CHUNK)))
        assert orphan in await storage.partial_ids()
        for upload_id in await storage.partial_ids():
            await storage.discard(upload_id)

    run(main())
    assert nothing_left(storage)
