"""The job runner in process, on real SQLite and a real folder: listeners, results, cancelling queued and running
jobs deterministically (the copy is held until the test lets it go)."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pyfiledrop.domain.model import Protocol, Upload, UploadState
from pyfiledrop.engine.adopt import create_from_file
from pyfiledrop.engine.service import Limits, NewUpload, UploadService
from pyfiledrop.meta.jobs import JobStatus, JobStore
from pyfiledrop.meta.sqlite import SQLiteMetadataStore
from pyfiledrop.storage.local import LocalStorage
from pyfiledrop.video import jobs as jobs_module
from pyfiledrop.video import media
from pyfiledrop.video.jobs import VideoJobs

Body = Callable[[VideoJobs, Upload], Awaitable[None]]


def run(tmp_path: Path, clip: Path, body: Body, workers: int = 1) -> None:
    async def main() -> None:
        storage = LocalStorage(tmp_path, tmp_path / ".partial", fsync_chunks=False, fsync_files=False)
        (tmp_path / ".partial").mkdir(exist_ok=True)
        meta = SQLiteMetadataStore(tmp_path / "db.sqlite3")
        await meta.open()
        service = UploadService(storage, meta, Limits(1 << 30))
        runner = VideoJobs(service, JobStore(meta), tmp_path / ".partial" / "video-jobs", workers)
        await runner.open()
        try:
            source = await create_from_file(service, NewUpload(clip.name, "owner-1", None, Protocol.PUT), clip)
            await body(runner, source)
        finally:
            await runner.close()
            await meta.close()

    asyncio.run(main())


async def finished(runner: VideoJobs, job_id: str) -> Any:
    for _ in range(600):
        job = await runner.get(job_id)
        if job.finished:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError("the job did not finish")


def test_a_job_makes_a_new_upload_and_tells_listeners(tmp_path: Path, clips: dict[str, Path]) -> None:
    counts: list[int] = []

    async def body(runner: VideoJobs, source: Upload) -> None:
        assert source.state is UploadState.COMPLETE
        assert source.sha256 == hashlib.sha256(clips["h264.mp4"].read_bytes()).hexdigest()
        runner.listeners.append(counts.append)
        job = await runner.submit(source, {"op": "rotate", "degrees": 270})
        assert runner.active == 1
        done = await finished(runner, job.id)
        assert done.status is JobStatus.DONE and done.progress == 1.0 and runner.active == 0
        made = await runner.service.status(done.result_upload)
        assert made.owner == source.owner and made.sha256 != source.sha256 and made.filename.endswith(".mp4")
        assert made.metadata["video_source"] == source.id
        blob = runner.service.storage.local_path(made.blob)  # type: ignore[arg-type]
        assert blob is not None and hashlib.sha256(blob.read_bytes()).hexdigest() == made.sha256
        assert media.probe(blob).rotation == 270
        assert (await runner.store.get(job.id)).status is JobStatus.DONE  # recorded, not only in memory

    run(tmp_path, clips["h264.mp4"], body)
    assert counts == [1, 0]


def test_cancel_a_running_and_a_queued_job(
    tmp_path: Path, clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    running = threading.Event()

    def held_copy(source: Path, output: Path, operation: dict[str, Any], progress: Callable[[float], None],
                  cancelled: Callable[[], bool]) -> None:  # fmt: skip
        output.write_bytes(b"half a copy")
        progress(0.5)
        running.set()
        deadline = time.monotonic() + 30
        while not cancelled() and time.monotonic() < deadline:
            time.sleep(0.01)
        raise media.CopyCancelled("cancelled")

    monkeypatch.setattr(jobs_module, "_copy", held_copy)

    async def body(runner: VideoJobs, source: Upload) -> None:
        first = await runner.submit(source, {"op": "trim", "start": 1, "end": 5})
        second = await runner.submit(source, {"op": "rotate", "degrees": 90})
        assert await asyncio.to_thread(running.wait, 30)
        assert (await runner.get(first.id)).status is JobStatus.RUNNING
        assert (await runner.get(first.id)).progress == 0.5
        assert (await runner.get(second.id)).status is JobStatus.QUEUED  # one slot, taken
        queued = await runner.cancel(second.id)
        assert queued.status is JobStatus.FAILED and queued.error == "cancelled"
        stopped = await runner.cancel(first.id)
        assert stopped.status is JobStatus.FAILED and stopped.error == "cancelled"
        assert runner.active == 0
        assert [u.id for u in await runner.service.meta.list("owner-1")] == [source.id]  # nothing made
        assert list(runner.scratch.iterdir()) == []  # the half copy is gone

    run(tmp_path, clips["h264.mp4"], body)
