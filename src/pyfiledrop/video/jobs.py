"""The server's video jobs: trims and rotations of finished uploads, run off the event loop, one per core at most.

A job copies the upload's file into a scratch folder (in worker threads: PyAV lets go of the GIL while it demuxes
and muxes), then the copy becomes a new upload of the same owner (engine/adopt.py) and the scratch file goes. Each
job is recorded (meta/jobs.py); one a stopped server left unfinished is marked failed at the next start.
``active`` and ``listeners`` tell others (keep-awake) whether video work is under way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pyfiledrop.domain.model import Protocol, Upload, UploadState
from pyfiledrop.engine.adopt import create_from_file
from pyfiledrop.engine.service import NewUpload, UploadService
from pyfiledrop.errors import BadRequest, PyfiledropError, Unprocessable, UploadConflict
from pyfiledrop.meta.jobs import Job, JobStatus, JobStore
from pyfiledrop.video import INSTALL_HINT, available
from pyfiledrop.video.timecode import parse_time

log = logging.getLogger("pyfiledrop.video")

ROTATIONS = (0, 90, 180, 270)
_RESTARTED = "the server stopped before this job finished; start it again"
_STOPPING = "the server is stopping"
_CANCEL_WAIT = 30.0  # seconds DELETE waits for a running copy to notice (it looks every few dozen packets)
_PROBES_KEPT = 64  # probe answers remembered, by stored file: a file never changes under its key


class _Progress:
    """Written by the copying thread, read by the loop: one float, replaced whole."""

    value = 0.0

    def set(self, fraction: float) -> None:
        self.value = fraction


class VideoJobs:
    def __init__(self, service: UploadService, store: JobStore, scratch: Path, workers: int) -> None:
        self.service = service
        self.store = store
        self.scratch = scratch
        self.workers = workers
        self.listeners: list[Callable[[int], None]] = []  # told the number of active jobs whenever it changes
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="video")
        self._slots = asyncio.Semaphore(workers)
        self._live: dict[str, Job] = {}  # queued and running jobs
        self._progress: dict[str, _Progress] = {}
        self._stops: dict[str, threading.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._probes: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._closing = False

    @property
    def active(self) -> int:
        """Jobs queued or running."""
        return len(self._live)

    async def open(self) -> None:
        if not await self.service.claims.alone():
            # Other replicas share the database and this scratch folder: their running jobs are not leftovers.
            # (A job cut off by a replica that died is marked failed when a replica next starts alone.)
            return
        failed = await self.store.fail_unfinished(_RESTARTED)
        if failed:
            log.warning("%d video job(s) were cut off by a stop and are marked failed", failed)
        await asyncio.to_thread(_empty_folder, self.scratch)

    async def close(self) -> None:
        self._closing = True
        for stop in self._stops.values():
            stop.set()
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=_CANCEL_WAIT)
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- requests -----------------------------------------------------------------------------------------------

    async def probe(self, upload: Upload) -> dict[str, Any]:
        """The probe JSON of a finished upload (remembered: a stored file never changes)."""
        source = self._source(upload)
        key = upload.blob_key or upload.id
        if key in self._probes:
            self._probes.move_to_end(key)
            return self._probes[key]
        from pyfiledrop.video import media

        try:
            info = await asyncio.to_thread(media.probe, source)
        except media.NotCopyable as exc:
            raise Unprocessable(f"{upload.filename} is not a video pyfiledrop can copy: {exc}") from None
        except media.MediaError as exc:
            raise Unprocessable(f"{upload.filename} could not be read: {exc}") from None
        answer = info.to_json()
        self._probes[key] = answer
        while len(self._probes) > _PROBES_KEPT:
            self._probes.popitem(last=False)
        return answer

    async def submit(self, upload: Upload, body: object) -> Job:
        """Check the request and the file now (a readable 4xx), then queue the copy."""
        operation = parse_operation(body)
        source = self._source(upload)
        operation = await self._plan(upload, source, operation)
        now = time.time()
        job = Job(secrets.token_urlsafe(12), upload.owner, upload.id, operation, created_at=now, updated_at=now)
        await self.store.insert(job)
        self._live[job.id] = job
        self._progress[job.id] = _Progress()
        self._stops[job.id] = threading.Event()
        self._tasks[job.id] = asyncio.get_running_loop().create_task(self._run(job, upload, source))
        self._changed()
        return job

    async def get(self, job_id: str) -> Job:
        live = self._live.get(job_id)
        if live is not None:
            return live.evolve(progress=self._progress[job_id].value) if live.status is JobStatus.RUNNING else live
        return await self.store.get(job_id)

    async def cancel(self, job_id: str) -> Job:
        """Stop a queued or running job; its copy is removed and it ends failed ("cancelled")."""
        job = await self.get(job_id)
        if job.finished:
            raise UploadConflict(f"job {job_id} has already {'finished' if job.status is JobStatus.DONE else 'failed'}")
        self._stops[job_id].set()
        task = self._tasks.get(job_id)
        if task is not None:
            if job.status is JobStatus.QUEUED:
                task.cancel()  # waiting for a slot: nothing to stop but the wait
            await asyncio.wait([task], timeout=_CANCEL_WAIT)
        return await self.get(job_id)

    # -- the work -----------------------------------------------------------------------------------------------

    def _source(self, upload: Upload) -> Path:
        if not available():
            raise Unprocessable(INSTALL_HINT)
        if upload.state is not UploadState.COMPLETE or upload.blob is None:
            raise UploadConflict("only a finished upload can be trimmed or rotated")
        path = self.service.storage.local_path(upload.blob)
        if path is None:
            raise Unprocessable("this storage keeps no local files: video jobs need one")
        return path

    async def _plan(self, upload: Upload, source: Path, operation: dict[str, Any]) -> dict[str, Any]:
        """A trim learns its real start (the keyframe) before it is queued, so the answer can say it."""
        info = await self.probe(upload)
        if operation["op"] != "trim":
            return operation
        from pyfiledrop.video import ops

        if operation["start"] >= info["duration"]:
            raise Unprocessable(f"the start {operation['start']:g} s is past the video's end ({info['duration']:g} s)")
        end = min(operation["end"], info["duration"] + 1)  # past the end: to the end
        try:
            used = await asyncio.to_thread(ops.snapped_start, source, operation["start"], end, operation["snap"])
        except ops.NotCopyable as exc:
            raise Unprocessable(str(exc)) from None
        return {**operation, "end": end, "requested_start": operation["start"], "start": used}

    async def _run(self, job: Job, upload: Upload, source: Path) -> None:
        stop, progress = self._stops[job.id], self._progress[job.id]
        output = self.scratch / f"{job.id}{_suffix(upload)}"
        try:
            async with self._slots:
                if stop.is_set():
                    raise _Cancelled()
                job = await self._save(job.evolve(status=JobStatus.RUNNING))
                await asyncio.to_thread(self.scratch.mkdir, parents=True, exist_ok=True)
                work = functools.partial(_copy, source, output, job.operation, progress.set, stop.is_set)
                await asyncio.get_running_loop().run_in_executor(self._executor, work)
            request = NewUpload(_new_name(upload, job.operation), upload.owner, None, Protocol.PUT,
                                content_type=upload.content_type,
                                metadata={"video_source": upload.id, "video_job": job.id})  # fmt: skip
            made = await create_from_file(self.service, request, output)
            job = job.evolve(status=JobStatus.DONE, progress=1.0, result_upload=made.id)
            log.info("video job %s (%s of %s) made upload %s", job.id, job.operation["op"], upload.id, made.id)
        except BaseException as exc:
            why = _STOPPING if self._closing else "cancelled" if stop.is_set() else _reason(exc)
            job = job.evolve(status=JobStatus.FAILED, progress=progress.value, error=why)
            if not isinstance(exc, Exception) and not stop.is_set():
                raise
        finally:
            await asyncio.to_thread(_remove, output)
            with contextlib.suppress(Exception):
                await self._save(job)
            self._forget(job.id)

    async def _save(self, job: Job) -> Job:
        if job.id in self._live:
            self._live[job.id] = job
        await self.store.save(job)
        return job

    def _forget(self, job_id: str) -> None:
        for table in (self._live, self._progress, self._stops, self._tasks):
            table.pop(job_id, None)
        self._changed()

    def _changed(self) -> None:
        for listener in list(self.listeners):
            try:
                listener(self.active)
            except Exception:
                log.exception("a video job listener failed")


class _Cancelled(Exception):
    pass


def _reason(exc: BaseException) -> str:
    from pyfiledrop.video import media

    if isinstance(exc, asyncio.CancelledError):
        return _STOPPING
    if isinstance(exc, PyfiledropError):
        return exc.message
    if isinstance(exc, media.MediaError | OSError):
        return str(exc)
    log.error("video job failed", exc_info=exc)
    return "internal error"


def _copy(source: Path, output: Path, operation: dict[str, Any], progress: Callable[[float], None],
          cancelled: Callable[[], bool]) -> None:  # fmt: skip
    """In a worker thread: the stream copy itself (ops writes it under a temporary name, then renames it)."""
    from pyfiledrop.video import ops

    if operation["op"] == "trim":
        ops.copy_range(source, output, operation["start"], operation["end"], progress, cancelled)
    else:
        ops.rotate(source, output, operation["degrees"], progress, cancelled)


def parse_operation(body: object) -> dict[str, Any]:
    """``{"op": "trim", "start": s, "end": s[, "snap": "before"|"after"]}`` or ``{"op": "rotate", "degrees": d}``."""
    if not isinstance(body, dict):
        raise BadRequest('send {"op": "trim", "start": s, "end": s} or {"op": "rotate", "degrees": 90}')
    match body.get("op"):
        case "trim":
            start, end = _seconds(body, "start"), _seconds(body, "end")
            snap = body.get("snap", "before")
            if snap not in ("before", "after"):
                raise BadRequest('snap must be "before" or "after"')
            if end <= start:
                raise BadRequest(f"the end ({end:g} s) must come after the start ({start:g} s)")
            return {"op": "trim", "start": start, "end": end, "snap": snap}
        case "rotate":
            degrees = body.get("degrees")
            if isinstance(degrees, bool) or degrees not in ROTATIONS:
                raise BadRequest("degrees must be 0, 90, 180 or 270 (clockwise)")
            return {"op": "rotate", "degrees": int(degrees)}
    raise BadRequest('op must be "trim" or "rotate"')


def _seconds(body: dict[str, Any], key: str) -> float:
    value = body.get(key)
    if isinstance(value, str):
        try:
            value = parse_time(value)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise BadRequest(f"{key} must be a number of seconds, 0 or more")
    return float(value)


def _suffix(upload: Upload) -> str:
    suffix = Path(upload.filename).suffix.lower()
    return suffix if suffix in (".mp4", ".m4v", ".mov", ".mkv", ".webm") else ".mkv"


def _new_name(upload: Upload, operation: dict[str, Any]) -> str:
    path = Path(upload.filename)
    stem, suffix = path.stem or "video", _suffix(upload)
    if operation["op"] == "trim":
        return f"{stem} (trim {operation['start']:g}-{operation['end']:g}s){suffix}"
    return f"{stem} (rotate {operation['degrees']}){suffix}"


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def _empty_folder(folder: Path) -> None:
    """Scratch copies of jobs a stop cut off. The folder itself is made by the first job (a server that never
    edits a video leaves nothing in the partial folder)."""
    if folder.exists():
        shutil.rmtree(folder)
