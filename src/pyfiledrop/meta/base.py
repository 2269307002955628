"""The records side of an upload. Backends know nothing of bytes or HTTP."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.domain.model import BlobRef, Upload, UploadState


@dataclass(frozen=True, slots=True)
class Usage:
    total: int  # unique stored bytes plus the declared sizes of unfinished uploads
    owner: int  # declared sizes of one owner's uploads (a deduplicated file still counts for each owner)
    files: int = 0  # one owner's uploads that are files (not tus parts), finished or not


class MetadataStore(Protocol):
    """Upload records. Every method is one transaction, atomic also across processes.

    ``get`` and everything that names an id raise ``UploadNotFound`` for an unknown id.
    """

    async def open(self) -> None:
        """Connect and bring the schema up to date."""

    async def close(self) -> None:
        """Release connections."""

    async def insert(self, upload: Upload) -> Upload:
        """Store a new upload. If its alias is taken, return the upload that holds it instead."""
        ...

    async def get(self, upload_id: UploadId) -> Upload: ...

    async def get_by_alias(self, alias: str) -> Upload: ...

    async def record_range(self, upload_id: UploadId, start: int, end: int) -> Upload:
        """Merge ``[start, end)`` into the received ranges and return the updated upload."""
        ...

    async def set_size(self, upload_id: UploadId, size: int) -> Upload:
        """Declare a deferred length; raises ``UploadConflict`` if one is already set."""
        ...

    async def transition(self, upload_id: UploadId, to: UploadState, *, expect: UploadState) -> Upload:
        """Move from ``expect`` to ``to``; raises ``UploadConflict`` if the state is not ``expect``."""
        ...

    async def complete(
        self, upload_id: UploadId, sha256: str, blob: BlobRef | None, expires_at: float | None, *, shared: bool = False
    ) -> Upload:
        """Record a verified, finished upload (COMPLETING → COMPLETE) and one more reference to its blob.

        ``shared``: the blob is another upload's (deduplication); raises BlobGone, changing nothing, if its last
        reference was dropped meanwhile, so the caller keeps its own copy instead.
        """
        ...

    async def insert_complete(
        self, upload: Upload, sha256: str, blob: BlobRef, expires_at: float | None,
        reusable: Callable[[BlobRef], bool] | None = None,
    ) -> Upload:  # fmt: skip
        """``insert`` and ``complete`` in one transaction: an upload whose bytes were all stored (as ``blob``)
        before it had a record — a small one-request upload. Deduplication in the same transaction: if a blob
        with the same sha256 and size is referenced and ``reusable`` says it is still there (called in the store's
        own thread; it may block), the upload refers to that one instead, and the returned upload's ``blob_key``
        says so (the caller then deletes its copy)."""
        ...

    async def terminate(self, upload_id: UploadId) -> BlobRef | None:
        """Mark the upload deleted and drop its blob reference; returns the blob if that was the last one."""
        ...

    async def find_blobs(self, sha256: str) -> Sequence[BlobRef]:
        """Stored blobs with this content, for deduplication."""
        ...

    async def blobs(self) -> Sequence[tuple[BlobRef, str, int]]:
        """Every blob with its sha256 and reference count."""
        ...

    async def usage(self, owner: str | None) -> Usage:
        """Bytes stored or reserved by unfinished uploads, in all and for one owner."""
        ...

    async def update_fields(self, upload_id: UploadId, *, expires_at: float | None) -> Upload:
        """Change what an owner may change after completion."""
        ...

    async def list(self, owner: str | None = None, *, include_terminated: bool = False) -> Sequence[Upload]:
        """Uploads of one owner, or of everyone when owner is None; newest first."""
        ...

    async def in_state(self, state: UploadState) -> Sequence[Upload]: ...

    async def stale(self, updated_before: float) -> Sequence[Upload]:
        """Unfinished uploads with no progress since the given time."""
        ...

    async def expired(self, now: float) -> Sequence[Upload]:
        """Completed uploads past their expiry."""
        ...

    async def purge(self, upload_id: UploadId) -> None:
        """Remove the record altogether."""
