"""Video job records: what was asked of which upload, and how it went (queued → running → done | failed)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from pyfiledrop.errors import JobNotFound
from pyfiledrop.meta.sql import Database, Tx

_COLUMNS = "id, owner, upload_id, operation, status, progress, error, result_upload, created_at, updated_at"
_UNFINISHED = ("queued", "running")


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    owner: str
    upload_id: str
    operation: dict[str, Any]  # {"op": "trim", "start": s, "end": s, "snap": …} or {"op": "rotate", "degrees": d}
    status: JobStatus = JobStatus.QUEUED
    progress: float = 0.0
    error: str | None = None
    result_upload: str | None = None  # the new upload, when done
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED)

    def evolve(self, **changes: Any) -> Job:
        return replace(self, updated_at=time.time(), **changes)


class JobStore:
    """Lives in the metadata database, on its connection thread."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, job: Job) -> None:
        def _insert(db: Tx) -> None:
            db.execute(
                f"INSERT INTO jobs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 - constant columns
                _row(job),
            )

        await self._db.query(_insert)

    async def save(self, job: Job) -> None:
        """Write a job's status, progress, error and result."""

        def _update(db: Tx) -> None:
            db.execute(
                "UPDATE jobs SET status = ?, progress = ?, error = ?, result_upload = ?, updated_at = ? WHERE id = ?",
                (job.status.value, job.progress, job.error, job.result_upload, job.updated_at, job.id),
            )

        await self._db.query(_update)

    async def get(self, job_id: str) -> Job:
        def _find(db: Tx) -> tuple[Any, ...] | None:
            return db.fetchone(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))  # noqa: S608 - constant columns

        row = await self._db.query(_find)
        if row is None:
            raise JobNotFound(job_id)
        return _job(row)

    async def fail_unfinished(self, reason: str) -> int:
        """At start-up: jobs a stopped server left queued or running are failed, never "running" forever."""

        def _fail(db: Tx) -> int:
            return db.execute(
                "UPDATE jobs SET status = 'failed', error = ?, updated_at = ? WHERE status IN (?, ?)",
                (reason, time.time(), *_UNFINISHED),
            )

        return await self._db.query(_fail)


def _row(job: Job) -> tuple[Any, ...]:
    return (job.id, job.owner, job.upload_id, json.dumps(job.operation), job.status.value, job.progress, job.error,
            job.result_upload, job.created_at, job.updated_at)  # fmt: skip


def _job(row: tuple[Any, ...]) -> Job:
    return Job(row[0], row[1], row[2], json.loads(row[3]), JobStatus(row[4]), float(row[5]), row[6], row[7],
               float(row[8]), float(row[9]))  # fmt: skip
