"""Domain errors: what went wrong, as data. No HTTP here; ``web/errors.py`` maps them to statuses.

Tree::

    PyfiledropError
    ├── BadRequest            malformed input (fields, headers, ids)
    │   ├── InvalidUploadId
    │   └── ChecksumUnsupported
    ├── NotAuthorized         no or invalid token
    │   ├── PasswordRequired
    │   └── WrongPassword
    ├── Forbidden             valid token, not yours
    ├── UploadNotFound
    ├── UploadGone            was here, has been terminated or expired
    ├── OffsetMismatch
    ├── UploadConflict        wrong state for the request (complete, length already set, ...)
    ├── TooLarge
    ├── ChecksumMismatch
    ├── UploadLocked          another request holds the upload and did not let go
    ├── RequestTimeout        the client stopped sending
    ├── StorageFull
    ├── QuotaExceeded
    │   └── TooManyFiles
    ├── DropNotFound / DropClosed   a drop link that is unknown / revoked or expired
    ├── DownloadsDisabled
    ├── MethodNotAllowed      a known path, not this method
    ├── PreconditionFailed    If-Match / If-None-Match refused the request
    ├── JobNotFound           a video job id that is unknown
    └── Unprocessable         well-formed, but cannot be done to this upload (a non-video for a video job)
"""

from __future__ import annotations

from typing import ClassVar


class PyfiledropError(Exception):
    code: ClassVar[str] = "ERR_INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(PyfiledropError):
    code = "ERR_BAD_REQUEST"


class InvalidUploadId(BadRequest):
    code = "ERR_INVALID_UPLOAD_ID"

    def __init__(self, value: str) -> None:
        shown = value if len(value) <= 80 else value[:80] + "…"
        super().__init__(f"{shown!r} is not a valid upload id")


class ChecksumUnsupported(BadRequest):
    code = "ERR_CHECKSUM_ALGORITHM_NOT_SUPPORTED"

    def __init__(self, algorithm: str, supported: tuple[str, ...]) -> None:
        super().__init__(f"checksum algorithm {algorithm!r} is not supported; use one of {', '.join(supported)}")


class NotAuthorized(PyfiledropError):
    code = "ERR_NOT_AUTHORIZED"


class Forbidden(PyfiledropError):
    code = "ERR_FORBIDDEN"


class UploadNotFound(PyfiledropError):
    code = "ERR_UPLOAD_NOT_FOUND"

    def __init__(self, upload_id: str) -> None:
        super().__init__(f"upload {upload_id} was not found")
        self.upload_id = upload_id


class UploadGone(PyfiledropError):
    code = "ERR_UPLOAD_GONE"

    def __init__(self, upload_id: str) -> None:
        super().__init__(f"upload {upload_id} has been deleted or has expired")
        self.upload_id = upload_id


class OffsetMismatch(PyfiledropError):
    code = "ERR_MISMATCHED_OFFSET"

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(
            f"Upload-Offset {got} does not match the {expected} bytes received; HEAD the upload and resume"
        )
        self.expected = expected
        self.got = got


class UploadConflict(PyfiledropError):
    code = "ERR_UPLOAD_CONFLICT"


class TooLarge(PyfiledropError):
    code = "ERR_UPLOAD_SIZE_EXCEEDED"

    def __init__(self, limit: int, size: int | None = None) -> None:
        what = f"{size} bytes is" if size is not None else "the upload is"
        super().__init__(f"{what} over the limit of {limit} bytes ({limit / 2**20:.0f} MiB)")
        self.limit = limit
        self.size = size


class ChecksumMismatch(PyfiledropError):
    code = "ERR_CHECKSUM_MISMATCH"

    def __init__(self, algorithm: str) -> None:
        super().__init__(f"the {algorithm} checksum of the data does not match; the chunk was discarded, send it again")
        self.algorithm = algorithm


class UploadLocked(PyfiledropError):
    code = "ERR_UPLOAD_LOCKED"

    def __init__(self, upload_id: str) -> None:
        super().__init__(f"upload {upload_id} is being written by another request; retry shortly")


class RequestTimeout(PyfiledropError):
    code = "ERR_REQUEST_TIMEOUT"

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no data received for {seconds:g} s; the bytes before the stall were kept")


class StorageFull(PyfiledropError):
    code = "ERR_STORAGE_FULL"

    def __init__(self, detail: str = "the server's disk is full") -> None:
        super().__init__(f"{detail}; what was received is kept, resume once space is freed")


class QuotaExceeded(PyfiledropError):
    code = "ERR_QUOTA_EXCEEDED"

    def __init__(self, which: str, limit: int, used: int, size: int) -> None:
        left = max(limit - used, 0)
        super().__init__(
            f"quota reached: {size} more bytes do not fit in {which} of {limit} bytes "
            f"({left} bytes left); delete something or ask the admin"
        )
        self.limit = limit


class TooManyFiles(QuotaExceeded):
    def __init__(self, which: str, limit: int) -> None:
        PyfiledropError.__init__(self, f"quota reached: {which} takes at most {limit} file(s), and has them all")
        self.limit = limit


class PasswordRequired(NotAuthorized):
    code = "ERR_PASSWORD_REQUIRED"


class WrongPassword(NotAuthorized):
    code = "ERR_WRONG_PASSWORD"

    def __init__(self) -> None:
        super().__init__("wrong password")


class DropNotFound(PyfiledropError):
    code = "ERR_DROP_NOT_FOUND"

    def __init__(self) -> None:
        super().__init__("this drop link does not exist; check that it was copied whole")


class DropClosed(PyfiledropError):
    code = "ERR_DROP_CLOSED"

    def __init__(self, why: str) -> None:
        super().__init__(f"this drop link {why}; ask whoever sent it for a new one")


class ShareClosed(PyfiledropError):
    """A share link that was revoked, has expired, or has had all the downloads it allows."""

    code = "ERR_SHARE_CLOSED"

    def __init__(self, why: str) -> None:
        super().__init__(f"this share link {why}; ask whoever sent it for a new one")


class DownloadsDisabled(PyfiledropError):
    code = "ERR_DOWNLOADS_DISABLED"

    def __init__(self) -> None:
        super().__init__("downloads are disabled on this server (start it with --allow-downloads), or use your token")


class VersionMismatch(PyfiledropError):
    code = "ERR_UNSUPPORTED_VERSION"


class UnsupportedMediaType(PyfiledropError):
    code = "ERR_INVALID_CONTENT_TYPE"


class MethodNotAllowed(PyfiledropError):
    code = "ERR_METHOD_NOT_ALLOWED"

    def __init__(self, method: str, allowed: tuple[str, ...]) -> None:
        super().__init__(f"{method[:20]} is not allowed here; this path answers {', '.join(allowed)}")
        self.allowed = allowed


class PreconditionFailed(PyfiledropError):
    code = "ERR_PRECONDITION_FAILED"


class RangeNotSatisfiable(PyfiledropError):
    code = "ERR_RANGE_NOT_SATISFIABLE"

    def __init__(self, size: int) -> None:
        super().__init__(f"the requested range is outside the file's {size} bytes")
        self.size = size


class RateLimited(PyfiledropError):
    code = "ERR_RATE_LIMITED"

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(f"too many {what} from your address; try again in {retry_after} s")
        self.retry_after = retry_after


class BlobGone(PyfiledropError):
    """A deduplicated upload's blob lost its last reference before this one was added (never reaches HTTP)."""

    code = "ERR_BLOB_GONE"


class JobNotFound(PyfiledropError):
    code = "ERR_JOB_NOT_FOUND"

    def __init__(self, job_id: str) -> None:
        shown = job_id if len(job_id) <= 40 else job_id[:40] + "…"
        super().__init__(f"no job {shown!r}")


class Unprocessable(PyfiledropError):
    code = "ERR_UNPROCESSABLE"


class ConfigError(Exception):
    """A setting is invalid; the CLI prints the message on one line and exits 2."""


class ClientDisconnected(PyfiledropError):
    code = "ERR_CLIENT_DISCONNECTED"

    def __init__(self) -> None:
        super().__init__("the client went away before the body was complete")
