"""An upload record as a row of the ``uploads`` table, the same in every backend (meta/migrations.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
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


class UploadQueries:
    """The reads both backends word alike; each backend runs them with its own ``_select`` (the rows after
    ``SELECT … FROM uploads``)."""

    async def _select(self, tail: str, params: Sequence[Any]) -> Sequence[Upload]:
        raise NotImplementedError

    async def list(self, owner: str | None = None, *, include_terminated: bool = False) -> Sequence[Upload]:
        clauses, params = [], []
        if owner is not None:
            clauses.append("owner = ?")
            params.append(owner)
        if not include_terminated:
            clauses.append("state != 'terminated'")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return await self._select(f"{where} ORDER BY created_at DESC, id", params)

    async def in_state(self, state: UploadState) -> Sequence[Upload]:
        return await self._select("WHERE state = ?", [state.value])

    async def stale(self, updated_before: float) -> Sequence[Upload]:
        return await self._select("WHERE state = 'receiving' AND updated_at < ?", [updated_before])

    async def expired(self, now: float) -> Sequence[Upload]:
        return await self._select("WHERE state = 'complete' AND expires_at IS NOT NULL AND expires_at <= ?", [now])
