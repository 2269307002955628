"""Drop links, shares, video jobs, the named tree's views, admin listing pages and shared settings: one SQL for
both backends (meta/sql.py), the same behaviour on each."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from pyfiledrop.config import Settings
from pyfiledrop.domain.model import BlobRef, ConcatKind
from pyfiledrop.errors import DropClosed, DropNotFound, QuotaExceeded, TooManyFiles, UploadNotFound
from pyfiledrop.meta import listing
from pyfiledrop.meta.drops import DropStore, NewDrop
from pyfiledrop.meta.jobs import Job, JobStatus, JobStore
from pyfiledrop.meta.postgres import PostgresMetadataStore
from pyfiledrop.meta.settings import SettingsStore, limits_of
from pyfiledrop.meta.shares import NewShare, ShareStore
from pyfiledrop.meta.sqlite import SQLiteMetadataStore
from pyfiledrop.meta.views import ViewStore
from tests.meta.conftest import Store, StoreFactory, run
from tests.meta.test_contract import upload


def test_drops(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        drops = DropStore(store)
        drop, token = await drops.create(NewDrop("footage", max_files=3, max_bytes=10**9))
        assert (await drops.resolve(token)).id == drop.id
        assert [d.label for d in await drops.list()] == ["footage"]
        await drops.revoke(drop.id)
        with pytest.raises(DropClosed):
            await drops.resolve(token)
        with pytest.raises(DropNotFound):
            await drops.resolve("nothing")

    run(make_store, body)


def test_drop_limits_hold_across_replicas(postgres_url: str) -> None:
    """Twelve uploads started at once through a 3-file link, at three replicas: exactly three get a record; and the
    link's byte limit holds the same way."""

    async def main() -> None:
        stores = [PostgresMetadataStore(postgres_url) for _ in range(3)]
        for store in stores:
            await store.open()
        try:
            drop, _ = await DropStore(stores[0]).create(NewDrop("three", max_files=3))
            made = await asyncio.gather(*(stores[n % 3].insert(upload(drop.owner, 10)) for n in range(12)),
                                        return_exceptions=True)  # fmt: skip
            assert sum(not isinstance(m, BaseException) for m in made) == 3
            assert all(isinstance(m, TooManyFiles) for m in made if isinstance(m, BaseException))
            part = await stores[1].insert(upload(drop.owner, 10, concat=ConcatKind.PARTIAL))  # a part is no file
            assert part.owner == drop.owner
            sized, _ = await DropStore(stores[0]).create(NewDrop("bytes", max_bytes=100))
            tries = await asyncio.gather(*(stores[n % 3].insert(upload(sized.owner, 40)) for n in range(6)),
                                         return_exceptions=True)  # fmt: skip
            assert sum(not isinstance(t, BaseException) for t in tries) == 2
            assert all(isinstance(t, QuotaExceeded) for t in tries if isinstance(t, BaseException))
        finally:
            for store in stores:
                await store.close()

    asyncio.run(main())


def test_shares_and_counted_downloads(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        shares = ShareStore(store)
        files = [await store.insert(upload("alice")) for _ in range(2)]
        share, token = await shares.create(NewShare((files[0].id,), max_downloads=2, label="one"))
        several, _ = await shares.create(NewShare(tuple(f.id for f in files), several=True))
        assert (await shares.resolve(token)).id == share.id
        assert (await shares.get(several.id)).upload_ids == tuple(f.id for f in files)
        assert {s.id for s in await shares.for_upload(files[0].id)} == {share.id, several.id}
        assert {s.id for s in await shares.for_owner("alice")} == {share.id, several.id}
        counted = await asyncio.gather(*(shares.count_download(share.id) for _ in range(10)))
        assert counted.count(True) == 2  # two at once cannot both take the last download
        await shares.revoke(several.id)
        assert (await shares.get(several.id)).revoked
        with pytest.raises(UploadNotFound):
            await shares.resolve("nothing")
        await shares.remember_crc32("aa" * 32, 0xFFFFFFFF)
        await shares.remember_crc32("aa" * 32, 1)  # the first one stays
        assert await shares.known_crc32s(["aa" * 32, "bb" * 32]) == {"aa" * 32: 0xFFFFFFFF}

    run(make_store, body)


def test_jobs(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        jobs = JobStore(store)
        job = Job("j1", "alice", "u1", {"op": "rotate", "degrees": 90}, created_at=time.time(), updated_at=time.time())
        await jobs.insert(job)
        await jobs.save(job.evolve(status=JobStatus.RUNNING, progress=0.5))
        assert (await jobs.get("j1")).progress == 0.5
        assert await jobs.fail_unfinished("restarted") == 1
        failed = await jobs.get("j1")
        assert (failed.status, failed.error, failed.operation["degrees"]) == (JobStatus.FAILED, "restarted", 90)

    run(make_store, body)


def test_views(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        views = ViewStore(store)
        first = await store.insert_complete(upload(size=1), "cc" * 32, BlobRef("k1", 1), None)
        second = await store.insert_complete(upload(size=1), "cc" * 32, BlobRef("k1", 1), None)
        assert await views.unnamed() == [first.id, second.id]
        await views.record([(first.id, "a/f.bin"), (second.id, "a/g.bin")])
        await views.record([(first.id, "a/f2.bin")])  # again: the row is replaced
        assert await views.path_of(first.id) == "a/f2.bin"
        assert await views.named([first.id]) == {first.id}
        assert await views.taken(["a/g.bin", "x"]) == {"a/g.bin"}
        assert await views.successor(first.id, "k1") == (second.id, "f.bin")
        await store.terminate(second.id)
        assert await views.stale() == [(second.id, "a/g.bin")]
        await views.forget(second.id)
        await views.rekey("k1", "k2")
        assert (await store.get(first.id)).blob_key == "k2"
        assert sorted(await views.every()) == [(first.id, "a/f2.bin")]

    run(make_store, body)


def test_listing_pages(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        for number, size in enumerate([5, None, 7]):
            await store.insert(upload("o", size, created_at=1000.0 + number).evolve(filename=f"Name-{number}.txt"))
        drop, _ = await DropStore(store).create(NewDrop("Wedding"))
        await store.insert(upload(drop.owner, 1).evolve(filename="portrait.jpg"))
        page = await listing.page(store, listing.PageQuery(sort="name", descending=False, limit=2))
        assert page.total == 4 and [u.filename for u in page.uploads] == ["Name-0.txt", "Name-1.txt"]
        by_size = await listing.page(store, listing.PageQuery(owner="o", sort="size", descending=False))
        assert [u.size for u in by_size.uploads] == [None, 5, 7]  # an unknown size first, on both backends
        found = await listing.page(store, listing.PageQuery(search="wedding"))
        assert [u.filename for u in found.uploads] == ["portrait.jpg"] and found.labels == {drop.owner: "Wedding"}
        assert (await listing.page(store, listing.PageQuery(search="NAME-1"))).total == 1
        assert (await listing.page(store, listing.PageQuery(search="%"))).total == 0

    run(make_store, body)


def test_settings_made_once_by_racing_replicas(make_store: StoreFactory, tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        others = [make_store() for _ in range(3)]
        for other in others:
            await other.open()
        try:
            keys = await asyncio.gather(*(SettingsStore(s).signing_key() for s in [store, *others]))
            assert len(set(keys)) == 1 and len(keys[0]) == 32
            values = await asyncio.gather(*(SettingsStore(s).put_once("x", str(n)) for n, s in enumerate(others)))
            assert len(set(values)) == 1
        finally:
            for other in others:
                await other.close()

    run(make_store, body)


def test_a_legacy_key_file_is_taken_over(make_store: StoreFactory, tmp_path: Path) -> None:
    legacy = tmp_path / ".pyfiledrop.secret"
    legacy.write_bytes(b"k" * 32)

    async def body(store: Store) -> None:
        assert await SettingsStore(store).signing_key(legacy) == b"k" * 32
        legacy.write_bytes(b"z" * 32)
        assert await SettingsStore(store).signing_key(legacy) == b"k" * 32  # the database's now

    run(make_store, body)


def test_conflicting_limits_are_warned_about(postgres_url: str, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        first, second = PostgresMetadataStore(postgres_url), PostgresMetadataStore(postgres_url)
        await first.open()
        await second.open()
        try:
            assert await SettingsStore(first).agree(limits_of(Settings(max_size=100))) == []
            with caplog.at_level(logging.WARNING, logger="pyfiledrop.meta"):
                differing = await SettingsStore(second).agree(limits_of(Settings(max_size=200)))
            assert differing == ["limit.max_size"]
            assert "max-size" in caplog.text and "200" in caplog.text and "100" in caplog.text
        finally:
            await first.close()
            await second.close()

    asyncio.run(main())


def test_one_machine_records_its_limits_without_warning(tmp_path: Path) -> None:
    async def main() -> None:
        store = SQLiteMetadataStore(tmp_path / "one.sqlite3")
        await store.open()
        try:
            settings = SettingsStore(store)
            assert await settings.agree(limits_of(Settings(max_size=100))) == []
            assert await settings.agree(limits_of(Settings(max_size=200))) == []  # a restart with a new limit
            assert await settings.get("limit.max_size") == "200"
        finally:
            await store.close()

    asyncio.run(main())
