"""What an upload is: frozen records, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.domain.ranges import RangeSet


class UploadState(StrEnum):
    RECEIVING = "receiving"  # bytes may arrive
    COMPLETING = "completing"  # every byte is there; hashing and moving into place
    COMPLETE = "complete"  # final name exists, sha256 known
    TERMINATED = "terminated"  # deleted; kept as a tombstone so clients get 410, not 404


class Protocol(StrEnum):
    TUS = "tus"
    DROPZONE = "dropzone"
    PUT = "put"


class ConcatKind(StrEnum):
    NONE = ""
    PARTIAL = "partial"  # a tus part, only useful to build a final upload
    FINAL = "final"  # built from parts


@dataclass(frozen=True, slots=True)
class BlobRef:
    """Where a finished file's bytes live, as the storage backend names it."""

    key: str
    size: int


# The uploader's address (what the admin view shows), kept among the metadata so that recording it costs no new
# column or query; the engine sets it itself, so a client sending this key cannot choose what the admin sees.
CLIENT_ADDRESS_KEY = "pyfiledrop.client_address"


@dataclass(frozen=True, slots=True)
class Upload:
    id: UploadId
    filename: str
    owner: str
    size: int | None  # None while a tus length is deferred
    protocol: Protocol
    state: UploadState = UploadState.RECEIVING
    received: RangeSet = field(default_factory=RangeSet)
    created_at: float = 0.0
    updated_at: float = 0.0
    sha256: str | None = None
    blob_key: str | None = None
    alias: str | None = None  # the Dropzone dzuuid, so /download/{dzuuid} keeps working
    content_type: str = "application/octet-stream"
    metadata: dict[str, str] = field(default_factory=dict)  # tus Upload-Metadata, decoded
    concat: ConcatKind = ConcatKind.NONE
    parts: tuple[UploadId, ...] = ()
    expires_at: float | None = None  # completed uploads: deleted after this time

    @property
    def client_address(self) -> str | None:
        return self.metadata.get(CLIENT_ADDRESS_KEY)

    @property
    def client_metadata(self) -> dict[str, str]:
        """The metadata as the client sent it (what tus HEAD gives back): without what the server added."""
        return {key: value for key, value in self.metadata.items() if key != CLIENT_ADDRESS_KEY}

    @property
    def offset(self) -> int:
        return self.received.contiguous_prefix

    @property
    def is_complete(self) -> bool:
        return self.state is UploadState.COMPLETE

    @property
    def all_bytes_received(self) -> bool:
        return self.size is not None and self.received.is_complete(self.size)

    def expired(self, now: float) -> bool:
        """Whether its expiry has come: from ``expires_at`` on, no read sees it (the sweep only frees the bytes)."""
        return self.expires_at is not None and now >= self.expires_at

    @property
    def blob(self) -> BlobRef | None:
        if self.blob_key is None or self.size is None:
            return None
        return BlobRef(self.blob_key, self.size)

    def evolve(self, **changes: object) -> Upload:
        return replace(self, **changes)  # type: ignore[arg-type]
