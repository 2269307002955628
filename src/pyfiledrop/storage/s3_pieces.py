"""Staged pieces: bytes of a part that arrived in requests that did not cover the whole part.

The next chunk of the same upload may arrive at another replica, so a piece is a small S3 object every replica
can list: ``PREFIX/uploads/<id>/pieces/<part>/<start>-<end>``. Whoever stages the piece that completes a part
reads the pieces back, uploads the part and deletes them; if two replicas both do, they upload the same bytes
under the same part number, which S3 takes as one. Listing after writing is strongly consistent on AWS S3 (since
2020), MinIO, SeaweedFS, Ceph and R2, so of two replicas staging the last two pieces at once, at least the later
one sees both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.storage.s3_client import S3Location

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

_PIECE = re.compile(r"(\d+)/(\d+)-(\d+)")


@dataclass(frozen=True, slots=True)
class Piece:
    part: int
    start: int
    end: int
    key: str


def upload_folder(location: S3Location, upload_id: UploadId) -> str:
    return location.key("uploads", upload_id) + "/"


def plan_key(location: S3Location, upload_id: UploadId) -> str:
    return upload_folder(location, upload_id) + "plan"


def piece_key(location: S3Location, upload_id: UploadId, part: int, start: int, end: int) -> str:
    return f"{upload_folder(location, upload_id)}pieces/{part:05d}/{start:013d}-{end:013d}"


def list_keys(client: S3Client, bucket: str, prefix: str) -> list[tuple[str, float]]:
    """Every key under ``prefix`` with its time (paged: 1,000 a page, at most a million keys)."""
    found: list[tuple[str, float]] = []
    token: str | None = None
    for _ in range(1000):
        page = (client.list_objects_v2(Bucket=bucket, Prefix=prefix, ContinuationToken=token) if token
                else client.list_objects_v2(Bucket=bucket, Prefix=prefix))  # fmt: skip
        found += [(item["Key"], item["LastModified"].timestamp()) for item in page.get("Contents", [])]
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            break
    return found


def list_pieces(client: S3Client, location: S3Location, upload_id: UploadId, part: int | None = None) -> list[Piece]:
    folder = upload_folder(location, upload_id) + "pieces/"
    prefix = folder if part is None else f"{folder}{part:05d}/"
    pieces = []
    for key, _ in list_keys(client, location.bucket, prefix):
        match = _PIECE.fullmatch(key.removeprefix(folder))
        if match:
            pieces.append(Piece(int(match[1]), int(match[2]), int(match[3]), key))
    return sorted(pieces, key=lambda piece: (piece.start, -piece.end))


def covering(pieces: Sequence[Piece], start: int, end: int) -> list[tuple[Piece, int, int]] | None:
    """Pieces that together hold ``[start, end)``, each with the range to take from it; None if a byte is
    missing. Overlaps (a retry staged again) are read once: from the piece that reaches furthest."""
    taken: list[tuple[Piece, int, int]] = []
    position = start
    while position < end:
        best = max((p for p in pieces if p.start <= position < p.end), key=lambda p: p.end, default=None)
        if best is None:
            return None
        stop = min(best.end, end)
        taken.append((best, position, stop))
        position = stop
    return taken


def read_range(client: S3Client, bucket: str, key: str, start: int, end: int, offset: int = 0) -> bytes:
    """Bytes ``[start, end)`` of an upload from the object ``key`` that begins at upload offset ``offset``."""
    answer = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start - offset}-{end - offset - 1}")
    data = answer["Body"].read()
    if len(data) != end - start:
        raise OSError(f"{key}: read {len(data)} bytes of {end - start}")
    return data


def delete_keys(client: S3Client, bucket: str, keys: Sequence[str]) -> None:
    for first in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 keys at most
        batch = [{"Key": key} for key in keys[first : first + 1000]]
        client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})  # type: ignore[typeddict-item]
