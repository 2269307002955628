"""The metadata contract (meta/base.py), the same for every backend: SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import pytest

from pyfiledrop.domain.ids import UploadId, new_upload_id
from pyfiledrop.domain.model import BlobRef, ConcatKind, Protocol, Upload, UploadState
from pyfiledrop.errors import BlobGone, UploadConflict, UploadNotFound
from pyfiledrop.meta.postgres import PostgresMetadataStore
from tests.meta.conftest import Store, StoreFactory, run


def upload(owner: str = "o", size: int | None = 100, **changes: object) -> Upload:
    now = time.time()
    made = Upload(id=new_upload_id(), filename="f.bin", owner=owner, size=size, protocol=Protocol.TUS,
                  created_at=now, updated_at=now)  # fmt: skip
    return made.evolve(**changes) if changes else made


async def completing(store: Store, size: int = 100, owner: str = "o") -> Upload:
    made = await store.insert(upload(owner, size))
    await store.record_range(made.id, 0, size)
    return await store.transition(made.id, UploadState.COMPLETING, expect=UploadState.RECEIVING)


def test_insert_get_and_alias(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        first = await store.insert(upload(alias="dz-1", metadata={"k": "v"}, size=None))
        assert await store.get(first.id) == first
        assert await store.get_by_alias("dz-1") == first
        again = await store.insert(upload(alias="dz-1"))  # the alias is taken: the holder comes back
        assert again.id == first.id
        with pytest.raises(UploadNotFound):
            await store.get(UploadId("A" * 24))
        with pytest.raises(UploadNotFound):
            await store.get_by_alias("nobody")

    run(make_store, body)


def test_one_alias_one_upload_under_a_race(make_store: StoreFactory) -> None:
    """Dropzone's first chunks of one file arriving at two replicas at once: one record, both told its id."""

    async def body(store: Store) -> None:
        other = make_store()
        await other.open()
        try:
            made = await asyncio.gather(*((store, other)[n % 2].insert(upload(alias="dz-race")) for n in range(8)))
            assert len({u.id for u in made}) == 1
            assert len(await store.list()) == 1
        finally:
            await other.close()

    run(make_store, body)


def test_record_range_merges_and_ignores_duplicates(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        made = await store.insert(upload(size=100))
        await store.record_range(made.id, 50, 100)
        merged = await store.record_range(made.id, 0, 50)
        assert merged.received.to_text() == (await store.get(made.id)).received.to_text()
        assert merged.all_bytes_received
        assert (await store.record_range(made.id, 10, 20)).received == merged.received

    run(make_store, body)


def test_concurrent_record_range_keeps_every_range(make_store: StoreFactory) -> None:
    """64 chunks recorded at once from two stores (two replicas, or two processes) on one upload: none lost."""

    async def body(store: Store) -> None:
        other = make_store()
        await other.open()
        try:
            made = await store.insert(upload(size=64 * 10))
            await asyncio.gather(*((store if n % 2 else other).record_range(made.id, n * 10, n * 10 + 10)
                                   for n in range(64)))  # fmt: skip
            assert (await store.get(made.id)).all_bytes_received
        finally:
            await other.close()

    run(make_store, body)


def test_set_size_once(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        made = await store.insert(upload(size=None))
        assert (await store.set_size(made.id, 10)).size == 10
        assert (await store.set_size(made.id, 10)).size == 10
        with pytest.raises(UploadConflict):
            await store.set_size(made.id, 11)

    run(make_store, body)


def test_transition_conflicts(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        made = await store.insert(upload())
        with pytest.raises(UploadConflict):
            await store.transition(made.id, UploadState.COMPLETE, expect=UploadState.COMPLETING)
        with pytest.raises(UploadNotFound):
            await store.transition(UploadId("B" * 24), UploadState.COMPLETING, expect=UploadState.RECEIVING)
        moved = await store.transition(made.id, UploadState.COMPLETING, expect=UploadState.RECEIVING)
        assert moved.state is UploadState.COMPLETING
        assert (await store.get(made.id)).state is UploadState.COMPLETING

    run(make_store, body)


def test_transition_and_completion_exactly_once_under_a_race(make_store: StoreFactory) -> None:
    """Twelve tasks on two stores race to claim an upload, then to complete it: one wins each race."""

    async def body(store: Store) -> None:
        other = make_store()
        await other.open()
        try:
            made = await store.insert(upload(size=100))
            await store.record_range(made.id, 0, 100)
            stores = [store, other] * 6
            claims = await asyncio.gather(
                *(s.transition(made.id, UploadState.COMPLETING, expect=UploadState.RECEIVING) for s in stores),
                return_exceptions=True,
            )
            assert sum(not isinstance(c, BaseException) for c in claims) == 1
            assert all(isinstance(c, UploadConflict) for c in claims if isinstance(c, BaseException))
            blob = BlobRef("blob-1", 100)
            done = await asyncio.gather(*(s.complete(made.id, "ab" * 32, blob, None) for s in stores),
                                        return_exceptions=True)  # fmt: skip
            assert sum(isinstance(d, Upload) for d in done) == 1
            assert all(isinstance(d, UploadConflict) for d in done if not isinstance(d, Upload))
            assert [(ref, refs) for ref, _, refs in await store.blobs()] == [(blob, 1)]
        finally:
            await other.close()

    run(make_store, body)


def test_dedup_reference_counts_and_last_reference_once(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        blob = BlobRef("blob-d", 100)
        first = await completing(store)
        await store.complete(first.id, "cd" * 32, blob, None)
        second = await completing(store)
        await store.complete(second.id, "cd" * 32, blob, None, shared=True)
        assert await store.find_blobs("cd" * 32) == [blob]
        assert [refs for _, _, refs in await store.blobs()] == [2]
        assert await store.terminate(first.id) is None
        # Two deletes of the last holder at once (two replicas' sweepers): the blob is handed out once.
        results = await asyncio.gather(*(store.terminate(second.id) for _ in range(6)))
        assert [r for r in results if r is not None] == [blob]
        assert await store.blobs() == []
        third = await completing(store)
        with pytest.raises(BlobGone):
            await store.complete(third.id, "cd" * 32, blob, None, shared=True)
        assert (await store.get(third.id)).state is UploadState.COMPLETING

    run(make_store, body)


def test_insert_complete_reuses_a_stored_twin(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        first = await store.insert_complete(upload(size=5), "ef" * 32, BlobRef("b1", 5), None, reusable=lambda _: True)
        assert first.blob_key == "b1" and first.state is UploadState.COMPLETE
        second = await store.insert_complete(upload(size=5), "ef" * 32, BlobRef("b2", 5), None,
                                             reusable=lambda ref: ref.key == "b1")  # fmt: skip
        assert second.blob_key == "b1"
        gone = await store.insert_complete(upload(size=5), "ef" * 32, BlobRef("b3", 5), None, reusable=lambda _: False)
        assert gone.blob_key == "b3"
        assert sorted((ref.key, refs) for ref, _, refs in await store.blobs()) == [("b1", 2), ("b3", 1)]

    run(make_store, body)


def test_usage_counts_stored_and_reserved_bytes(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        await store.insert(upload("alice", 1000))
        await store.insert(upload("alice", 10, concat=ConcatKind.PARTIAL))
        done = await completing(store, 300, owner="bob")
        await store.complete(done.id, "aa" * 32, BlobRef("bob-1", 300), None)
        alice = await store.usage("alice")
        assert (alice.total, alice.owner, alice.files) == (1310, 1010, 1)
        bob = await store.usage("bob")
        assert (bob.owner, bob.files) == (300, 1)
        assert (await store.usage(None)).owner == 0

    run(make_store, body)


def test_list_stale_expired_update_and_purge(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        old = await store.insert(upload("o", updated_at=time.time() - 1000, created_at=time.time() - 1000))
        new = await store.insert(upload("o"))
        other = await store.insert(upload("p"))
        assert [u.id for u in await store.list("o")] == [new.id, old.id]
        assert {u.id for u in await store.list()} == {old.id, new.id, other.id}
        assert [u.id for u in await store.stale(time.time() - 500)] == [old.id]
        done = await completing(store)
        await store.complete(done.id, "bb" * 32, BlobRef("k", 100), time.time() + 3600)
        assert await store.expired(time.time()) == []
        await store.update_fields(done.id, expires_at=time.time() - 1)
        assert [u.id for u in await store.expired(time.time())] == [done.id]
        assert [u.id for u in await store.in_state(UploadState.COMPLETE)] == [done.id]
        await store.terminate(old.id)
        assert old.id not in {u.id for u in await store.list("o")}
        assert old.id in {u.id for u in await store.list("o", include_terminated=True)}
        await store.purge(old.id)
        await store.purge(old.id)  # idempotent: a second sweeper's purge changes nothing
        with pytest.raises(UploadNotFound):
            await store.get(old.id)

    run(make_store, body)


def test_sweepers_claim_disjoint_batches(postgres_url: str) -> None:
    """Three replicas' sweepers claiming stale uploads at once: each upload goes to exactly one."""

    async def main() -> None:
        stores = [PostgresMetadataStore(postgres_url) for _ in range(3)]
        for store in stores:
            await store.open()
        try:
            made = [await stores[0].insert(upload(updated_at=time.time() - 1000)) for _ in range(30)]
            batches = await asyncio.gather(*(s.claim_stale(time.time() - 500, limit=7) for s in stores for _ in "ab"))
            claimed = [u.id for batch in batches for u in batch]
            assert len(claimed) == len(set(claimed)) == min(30, 6 * 7)
            assert set(claimed) <= {u.id for u in made}
            assert await stores[0].claim_stale(time.time() - 500) == []  # pushed forward while they are swept
        finally:
            for store in stores:
                await store.close()

    asyncio.run(main())
