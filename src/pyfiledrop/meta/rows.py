"""An upload record as a row of the ``uploads`` table, the same in every backend (meta/migrations.py)."""

from __future__ import annotations

import json
from typing import Any

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.domain.model import ConcatKind, Protocol, Upload, UploadState
from pyfiledrop.domain.ranges import RangeSet

COLUMNS = (
    "id, alias, filename, owner, size, protocol, state, received, created_at, updated_at, sha256, blob_key, "
    "content_type, metadata, concat, parts, expires_at"
)

SELECT = f"SELECT {COLUMNS} FROM uploads"  # noqa: S608 - constant column list, values always bound
INSERT = f"INSERT INTO uploads ({COLUMNS}) VALUES ({', '.join('?' * 17)})"  # noqa: S608


def to_row(u: Upload) -> tuple[Any, ...]:
    return (
        u.id, u.alias, u.filename, u.owner, u.size, u.protocol.value, u.state.value, u.received.to_text(),
        u.created_at, u.updated_at, u.sha256, u.blob_key, u.content_type,
        json.dumps(u.metadata) if u.metadata else "{}", u.concat.value, json.dumps(list(u.parts)) if u.parts else "[]",
        u.expires_at,
    )  # fmt: skip


def from_row(row: tuple[Any, ...]) -> Upload:
    (id_, alias, filename, owner, size, protocol, state, received, created_at, updated_at, sha256, blob_key,
     content_type, metadata, concat, parts, expires_at) = row  # fmt: skip
    return Upload(
        id=UploadId(id_), alias=alias, filename=filename, owner=owner, size=size, protocol=Protocol(protocol),
        state=UploadState(state), received=RangeSet.from_text(received), created_at=created_at,
        updated_at=updated_at, sha256=sha256, blob_key=blob_key, content_type=content_type,
        metadata=json.loads(metadata), concat=ConcatKind(concat), parts=tuple(UploadId(p) for p in json.loads(parts)),
        expires_at=expires_at,
    )  # fmt: skip
