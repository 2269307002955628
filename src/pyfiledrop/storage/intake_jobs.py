"""What the server and the intake's helper process say to each other (``intake.py``): a job per lent socket, a
reply per job, as small JSON datagrams. Shared by both sides; free of asyncio, to keep the helper small."""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass
from typing import Any

from pyfiledrop.errors import StorageFull
from pyfiledrop.sockets import Gone, Parked

SLOT_BYTES = 2 << 20  # as storage.buffers.BUFFER_BYTES: the largest body stored whole
READY = b"ready"  # a helper's first datagram: its imports are done, its threads take jobs
# The bytes the server read along with the head travel in the job's datagram up to this size (a unix datagram may
# be ~200 KiB): the helper then never touches the slot's pages, which would count in its memory as in the server's.
INLINE_MAX = 128 << 10
JOB_DATAGRAM_MAX = INLINE_MAX + 4096  # the job's fields, a newline, the inline bytes


@dataclass(frozen=True, slots=True)
class Job:
    """Read the body into ``slot`` from ``start`` to ``size``; once it is all there, hash and store it."""

    id: int
    slot: int
    start: int
    size: int
    idle_timeout: float
    upload_id: str
    blob_key: str
    inline: bool = False  # the slot's first ``start`` bytes follow the fields in the datagram (``datagram``)

    def encode(self) -> bytes:
        return _encode(self)

    @classmethod
    def decode(cls, data: bytes) -> Job:
        return cls(*_fields(data))

    def datagram(self, head: memoryview) -> list[bytes | memoryview]:
        """What is sent: the fields, then, when ``head`` (the slot's first ``start`` bytes) is small enough, a
        newline and those bytes."""
        if not self.inline:
            return [self.encode()]
        return [self.encode(), b"\n", head]

    @classmethod
    def received(cls, message: memoryview) -> tuple[Job, memoryview | None]:
        """A job and its inline bytes (None: they are in the slot) from a datagram made by ``datagram``."""
        end = bytes(message[: min(len(message), 4096)]).find(b"\n")
        job = cls.decode(bytes(message if end < 0 else message[:end]))
        if not job.inline:
            return job, None
        head = message[end + 1 :] if end >= 0 else message[:0]
        if len(head) != job.start:
            raise ValueError(f"a job with {len(head)} inline bytes, not {job.start}")
        return job, head


_STOPS: dict[str, type[BaseException]] = {"gone": Gone, "timeout": TimeoutError, "parked": Parked}


@dataclass(frozen=True, slots=True)
class Reply:
    """What came of a job: bytes read, why the body stopped short (``stop``), else the sha256 of what was stored
    (``sha256``) or why storing failed (``errno`` of an OSError, or ``message`` alone for anything else)."""

    id: int
    got: int
    stop: str | None = None  # gone | timeout | parked
    sha256: str | None = None
    errno: int | None = None
    message: str | None = None

    def encode(self) -> bytes:
        return _encode(self)

    @classmethod
    def decode(cls, data: bytes) -> Reply:
        return cls(*_fields(data))

    @classmethod
    def stopped(cls, job_id: int, got: int, error: BaseException) -> Reply:
        stop = next(name for name, kind in _STOPS.items() if isinstance(error, kind))
        return cls(job_id, got, stop=stop)

    @classmethod
    def failed(cls, job_id: int, got: int, error: BaseException) -> Reply:
        cause = error.__cause__ if isinstance(error, StorageFull) else error
        if isinstance(cause, OSError):
            return cls(job_id, got, errno=cause.errno or errno.EIO, message=cause.strerror or str(cause))
        return cls(job_id, got, message=f"{type(error).__name__}: {error}")

    def body_error(self) -> BaseException | None:
        return _STOPS[self.stop]() if self.stop else None

    def stored(self) -> str:
        """The sha256 of the stored body, or the error that stopped it being stored, raised as it was."""
        if self.sha256 is not None:
            return self.sha256
        if self.errno is not None:
            error = OSError(self.errno, self.message)
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull() from error
            raise error
        raise RuntimeError(f"the upload helper could not store the body: {self.message}")


def _encode(message: Any) -> bytes:
    """A JSON list of the fields in their order (both sides run the same code): no dict built, no names sent."""
    return json.dumps([getattr(message, name) for name in message.__slots__]).encode()


def _fields(data: bytes) -> list[Any]:
    """The fields of an encoded message; ValueError (or TypeError, for a wrong count) if it is not one."""
    values = json.loads(data)
    if not isinstance(values, list):
        raise ValueError(f"not a list of fields: {data[:80]!r}")
    return values
