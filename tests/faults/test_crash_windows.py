"""A crash at each exact point of the upload life cycle, placed there on purpose rather than by chance.

The random kill loop (test_crash_loop.py) rarely hits a window of a millisecond; these put a crash (enginekit.Crash:
the call unwinds as if the process died there) at each step of create, write, complete, deduplicate and delete, then
open the folder afresh, run start-up recovery and check the same invariants as the loop (crashkit.check_storage).
The last tests drive the real server: a clean restart, and the secret file a crash can leave empty.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import random
from pathlib import Path

import httpx
import pytest

from pyfiledrop.domain.model import ConcatKind, UploadState
from pyfiledrop.engine.service import Chunk
from tests.conftest import ServerProcess
from tests.faults.crashkit import Content, check_storage
from tests.faults.enginekit import Crash, body, crash_at, new, running, sha256

TUS = {"tus-resumable": "1.0.0"}


def contents(*sizes: int, seed: int = 5) -> list[Content]:
    rng = random.Random(seed)
    result = []
    for index, size in enumerate(sizes):
        data = rng.randbytes(size)
        result.append(Content(index, data, sha256(data)))
    return result


def whole(data: bytes) -> Chunk:
    return Chunk(0, body(data), len(data), exact_offset=True)


def test_crash_mid_write_keeps_what_was_recorded_and_the_upload_resumes(tmp_path: Path) -> None:
    (c,) = contents(2_000_000)

    async def crash() -> str:
        async with running(tmp_path) as e:
            upload = await e.service.create(new(0, len(c.data)))
            with pytest.raises(Crash):
                await e.service.write(upload.id, Chunk(0, body(c.data, fail_after=1_234_567, exc=Crash()),
                                                       len(c.data), exact_offset=True))  # fmt: skip
            return upload.id

    async def resume(upload_id: str) -> None:
        async with running(tmp_path) as e:
            upload = await e.service.status(upload_id)  # type: ignore[arg-type]
            assert upload.state is UploadState.RECEIVING
            assert upload.offset <= 1_234_567
            done = await e.service.write(upload.id, Chunk(upload.offset, body(c.data[upload.offset :]),
                                                          len(c.data) - upload.offset, exact_offset=True))  # fmt: skip
            assert done.sha256 == c.sha256

    upload_id = asyncio.run(crash())
    assert check_storage(tmp_path, [c]) == []
    asyncio.run(resume(upload_id))
    assert check_storage(tmp_path, [c]) == []


@pytest.mark.parametrize(
    ("target", "method", "before"),
    [
        # Every byte recorded, killed before the transition to completing: a tus client is done once HEAD says
        # Upload-Offset == Upload-Length, so start-up must complete it (it once did not: no sha256, no download,
        # and the stale sweep deleted it).
        ("meta", "transition", True),
        ("meta", "transition", False),  # marked completing, nothing else done
        ("storage", "finalize", True),  # hashed, not yet moved into place
        # Moved into place, not yet recorded: start-up puts the file back (storage.unfinalize) before it hashes it
        # again; it once failed here with FileNotFoundError and the server never started again.
        ("meta", "complete", True),
        ("meta", "complete", False),  # recorded complete, the partial file not yet removed
    ],
    ids=[
        "after-the-last-bytes-before-completing",
        "after-marking-completing",
        "before-the-rename",
        "after-the-rename-before-the-record",
        "after-the-record",
    ],
)
def test_crash_while_completing_is_finished_at_start_up(tmp_path: Path, target: str, method: str, before: bool) -> None:
    (c,) = contents(300_000)

    async def crash() -> str:
        async with running(tmp_path) as e:
            upload = await e.service.create(new(0, len(c.data)))
            crash_at(getattr(e, target), method, before=before)
            with pytest.raises(Crash):
                await e.service.write(upload.id, whole(c.data))
            return upload.id

    async def restart(upload_id: str) -> None:
        async with running(tmp_path) as e:
            upload = await e.service.status(upload_id)  # type: ignore[arg-type]
            assert upload.offset == len(c.data)  # what a tus client sees with HEAD: done
            assert upload.state is UploadState.COMPLETE
            assert upload.sha256 == c.sha256

    upload_id = asyncio.run(crash())
    asyncio.run(restart(upload_id))
    assert check_storage(tmp_path, [c]) == []


@pytest.mark.parametrize("before", [True, False], ids=["before-the-reference", "after-the-reference"])
def test_crash_while_deduplicating_leaves_one_blob_with_the_right_count(tmp_path: Path, before: bool) -> None:
    (c,) = contents(200_000)

    async def crash() -> tuple[str, str]:
        async with running(tmp_path) as e:
            first = await e.service.create(new(0, len(c.data)))
            await e.service.write(first.id, whole(c.data))
            second = await e.service.create(new(0, len(c.data)))
            crash_at(e.meta, "complete", before=before)
            with pytest.raises(Crash):
                await e.service.write(second.id, whole(c.data))
            return first.id, second.id

    async def restart(ids: tuple[str, str]) -> None:
        async with running(tmp_path) as e:
            for upload_id in ids:
                upload = await e.service.status(upload_id)  # type: ignore[arg-type]
                assert upload.state is UploadState.COMPLETE
                assert upload.sha256 == c.sha256
            blobs = await e.meta.blobs()
            assert [refs for _, _, refs in blobs] == [2]  # one file, both uploads

    ids = asyncio.run(crash())
    asyncio.run(restart(ids))
    assert check_storage(tmp_path, [c]) == []


@pytest.mark.parametrize("method", ["discard", "delete_blob"])
def test_crash_in_a_delete_between_the_record_and_the_files_leaves_no_orphan(tmp_path: Path, method: str) -> None:
    (c,) = contents(100_000)

    async def crash() -> str:
        async with running(tmp_path) as e:
            upload = await e.service.create(new(0, len(c.data)))
            await e.service.write(upload.id, whole(c.data))
            crash_at(e.storage, method)
            with pytest.raises(Crash):
                await e.service.terminate(upload.id)
            return upload.id

    async def restart(upload_id: str) -> None:
        async with running(tmp_path) as e:
            assert (await e.meta.get(upload_id)).state is UploadState.TERMINATED  # type: ignore[arg-type]
            assert await e.meta.blobs() == []

    upload_id = asyncio.run(crash())
    asyncio.run(restart(upload_id))
    assert check_storage(tmp_path, [c]) == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(upload_id)] == []


def test_crash_between_allocating_and_recording_a_new_upload_leaves_no_orphan(tmp_path: Path) -> None:
    async def crash() -> None:
        async with running(tmp_path) as e:
            crash_at(e.meta, "insert")
            with pytest.raises(Crash):
                await e.service.create(new(0, 1000))
            assert len(list((tmp_path / ".partial").glob("*.part"))) == 1

    async def restart() -> None:
        async with running(tmp_path) as e:
            assert e.report is not None
            assert e.report.partial_orphans == 1

    asyncio.run(crash())
    asyncio.run(restart())
    assert list((tmp_path / ".partial").glob("*.part")) == []


def test_finished_concatenation_parts_survive_a_restart(tmp_path: Path) -> None:
    """A finished partial upload keeps its bytes in .partial/ID.part until a final upload uses it. Start-up
    must not take it for an orphan (it once deleted every .part file without a *receiving* upload, so after any
    restart concatenating the parts failed with a 500)."""
    part1, part2, final = contents(70_000, 50_000, 0)
    final = Content(2, part1.data + part2.data, sha256(part1.data + part2.data))

    async def upload_parts() -> list[str]:
        async with running(tmp_path) as e:
            ids = []
            for part in (part1, part2):
                upload = await e.service.create(new(part.index, len(part.data), concat=ConcatKind.PARTIAL))
                await e.service.write(upload.id, whole(part.data))
                ids.append(upload.id)
            return ids

    async def concatenate(ids: list[str]) -> None:
        async with running(tmp_path) as e:
            done = await e.service.concatenate(new(2, None, concat=ConcatKind.FINAL), ids)  # type: ignore[arg-type]
            assert done.sha256 == final.sha256

    ids = asyncio.run(upload_parts())
    asyncio.run(concatenate(ids))
    assert check_storage(tmp_path, [part1, part2, final]) == []


def test_deduplicating_against_a_file_deleted_meanwhile_keeps_the_new_copy(tmp_path: Path) -> None:
    """UploadService._finish finds a blob with the same sha256 (_existing_blob), then records the new reference
    (meta.complete) in a second transaction. A DELETE or the expiry sweep of the blob's last other upload that runs
    between the two removes the blobs row and the file; the reference must then fail (BlobGone) and the new upload
    keep its own copy, not point at the deleted file."""
    (c,) = contents(100_000)

    async def race() -> str:
        async with running(tmp_path) as e:
            first = await e.service.create(new(0, len(c.data)))
            await e.service.write(first.id, whole(c.data))
            second = await e.service.create(new(0, len(c.data)))
            complete = e.meta.complete

            deleted: list[bool] = []

            async def delete_lands_between(*args: object, **kwargs: object) -> object:
                if not deleted:  # the other request's (or the sweep's) turn, once
                    deleted.append(True)
                    await e.service.terminate(first.id)
                return await complete(*args, **kwargs)  # type: ignore[arg-type]

            e.meta.complete = delete_lands_between  # type: ignore[method-assign]
            done = await e.service.write(second.id, whole(c.data))
            assert done.state is UploadState.COMPLETE
            return done.id

    upload_id = asyncio.run(race())
    assert check_storage(tmp_path, [c]) == []
    stored = [p for p in tmp_path.iterdir() if p.name.endswith("engine.bin")]
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in stored] == [c.sha256], upload_id


# -- the real server ------------------------------------------------------------------------------------------------


def test_a_finished_partial_upload_can_be_concatenated_after_a_clean_restart(
    make_server: type[ServerProcess], tmp_path: Path
) -> None:
    server = make_server(tmp_path / "s").start()
    data = random.Random(3).randbytes(100_000)
    created = httpx.post(f"{server.url}/files/", headers={**TUS, "upload-length": str(len(data)),
                                                           "upload-concat": "partial"})  # fmt: skip
    part = httpx.URL(created.headers["location"]).path
    patched = httpx.patch(f"{server.url}{part}", content=data, headers={
        **TUS, "upload-offset": "0", "content-type": "application/offset+octet-stream"})  # fmt: skip
    assert patched.status_code == 204
    server.stop()
    server.start()
    final = httpx.post(f"{server.url}/files/", headers={**TUS, "upload-concat": f"final;{part}"})
    assert final.status_code == 201, final.text  # today: 500 ERR_INTERNAL (FileNotFoundError on the .part)
    upload_id = final.headers["x-upload-id"]
    token = final.headers["x-pyfiledrop-token"]
    status = httpx.get(f"{server.url}/api/uploads/{upload_id}", headers={"x-pyfiledrop-token": token}).json()
    assert status["sha256"] == hashlib.sha256(data).hexdigest()


def test_an_empty_secret_file_left_by_a_crash_does_not_make_tokens_forgeable(
    make_server: type[ServerProcess], tmp_path: Path
) -> None:
    """A kill while the very first start writes the signing secret once left an empty file, and every later start
    signed owner tokens with the empty key; now the key is written under a temporary name and renamed, and a
    short file is replaced."""
    storage = tmp_path / "s"
    storage.mkdir()
    (storage / ".pyfiledrop.secret").write_bytes(b"")  # what the crash leaves
    server = make_server(storage).start()
    owner = "someone-else"
    mac = hmac.new(b"", owner.encode(), hashlib.sha256).digest()[:16]
    forged = f"{owner}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    response = httpx.get(f"{server.url}/api/uploads", headers={"x-pyfiledrop-token": forged})
    assert response.status_code == 401, "a token signed with the empty key was accepted"
