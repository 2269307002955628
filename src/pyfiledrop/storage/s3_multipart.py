"""The S3 multipart upload behind one pyfiledrop upload: created with its part plan, parts sent or assembled from
staged pieces, completed once every part is there (``seal``), or built from finished parts by copying (``concat``).

Blocking functions: S3Storage runs them in its S3 threads. The plan and the multipart upload's id are stored in
S3 beside the pieces (``uploads/<id>/plan``), so every replica finds them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.storage import s3_pieces as pieces
from pyfiledrop.storage.parts import MAX_PART, MAX_PARTS, MIN_PART, Plan, plan
from pyfiledrop.storage.s3_client import S3Location, error_code

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

_LIST_PAGES = 11  # ListParts gives 1,000 parts a page: 10,000 parts in at most 10


class StorageError(OSError):
    """S3 does not hold what the records say it should (bytes of a part missing at completion, too many parts)."""


@dataclass(frozen=True, slots=True)
class Manifest:
    multipart: str  # S3's UploadId
    plan: Plan


class Multipart:
    def __init__(self, client: S3Client, location: S3Location, align: int) -> None:
        self.client = client
        self.location = location
        self.align = align

    def blob_key(self, upload_id: str) -> str:
        return self.location.key("blobs", upload_id)

    def create(self, upload_id: UploadId, size: int | None) -> Manifest:
        parts = plan(size, self.align)
        answer = self.client.create_multipart_upload(Bucket=self.location.bucket, Key=self.blob_key(upload_id))
        manifest = Manifest(answer["UploadId"], parts)
        text = json.dumps({"multipart": manifest.multipart, "plan": parts.to_text()})
        self.client.put_object(Bucket=self.location.bucket, Key=pieces.plan_key(self.location, upload_id),
                               Body=text.encode())  # fmt: skip
        return manifest

    def load(self, upload_id: UploadId) -> Manifest | None:
        try:
            answer = self.client.get_object(Bucket=self.location.bucket, Key=pieces.plan_key(self.location, upload_id))
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        data = json.loads(answer["Body"].read())
        return Manifest(str(data["multipart"]), Plan.from_text(str(data["plan"])))

    def upload_part(self, upload_id: UploadId, manifest: Manifest, number: int, body: IO[bytes] | bytes) -> None:
        self.client.upload_part(Bucket=self.location.bucket, Key=self.blob_key(upload_id), PartNumber=number,
                                UploadId=manifest.multipart, Body=body)  # fmt: skip

    def assemble(self, upload_id: UploadId, manifest: Manifest, number: int, size: int | None = None) -> bool:
        """Upload part ``number`` from its staged pieces if they hold all its bytes; False if they do not."""
        start, end = manifest.plan.bounds(number, size)
        staged = pieces.list_pieces(self.client, self.location, upload_id, number)
        ranges = pieces.covering(staged, start, end)
        if ranges is None:
            return False
        bucket = self.location.bucket
        try:
            data = b"".join(pieces.read_range(self.client, bucket, p.key, a, b, p.start) for p, a, b in ranges)
        except Exception as exc:
            if error_code(exc) not in ("NoSuchKey", "404"):
                raise
            return number in self.parts(upload_id, manifest)  # another replica assembled it and removed the pieces
        self.upload_part(upload_id, manifest, number, data)
        pieces.delete_keys(self.client, bucket, [p.key for p in staged])
        return True

    def parts(self, upload_id: UploadId, manifest: Manifest) -> dict[int, tuple[str, int]]:
        """Parts uploaded so far: number → (ETag, size)."""
        found: dict[int, tuple[str, int]] = {}
        marker = 0
        for _ in range(_LIST_PAGES):
            page = self.client.list_parts(Bucket=self.location.bucket, Key=self.blob_key(upload_id),
                                          UploadId=manifest.multipart, PartNumberMarker=marker)  # fmt: skip
            for part in page.get("Parts", []):
                found[part["PartNumber"]] = (part["ETag"], part["Size"])
            marker = int(page.get("NextPartNumberMarker") or 0)
            if not page.get("IsTruncated"):
                break
        return found

    def sealed_size(self, upload_id: str) -> int | None:
        """The size of the finished object, or None if there is none yet."""
        try:
            return self.client.head_object(Bucket=self.location.bucket, Key=self.blob_key(upload_id))["ContentLength"]
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def seal(self, upload_id: UploadId, manifest: Manifest, size: int) -> None:
        """Complete the multipart upload: every part of ``[0, size)`` must be uploaded or fully staged."""
        if self.sealed_size(upload_id) == size:
            return  # sealed before (a crash, another replica, concatenation)
        key, bucket = self.blob_key(upload_id), self.location.bucket
        if size == 0:
            self.client.put_object(Bucket=bucket, Key=key, Body=b"")
            self.abort(upload_id)
            return
        count = manifest.plan.count(size)
        uploaded = self.parts(upload_id, manifest)
        for number in range(1, count + 1):
            start, end = manifest.plan.bounds(number, size)
            missing = uploaded.get(number, ("", -1))[1] != end - start
            if missing and not self.assemble(upload_id, manifest, number, size):
                raise StorageError(f"upload {upload_id}: bytes {start}-{end} of part {number} are not in S3")
        uploaded = self.parts(upload_id, manifest)
        done: Any = [{"PartNumber": n, "ETag": uploaded[n][0]} for n in range(1, count + 1)]
        self.client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=manifest.multipart,
                                              MultipartUpload={"Parts": done})  # fmt: skip

    def concat(self, upload_id: UploadId, manifest: Manifest, sources: list[tuple[str, int]]) -> None:
        """Make the object of ``upload_id`` from finished objects: server-side copies of every source range of
        at least 5 MiB; only the bytes that join sources smaller than that pass through this process."""
        bucket, key = self.location.bucket, self.blob_key(upload_id)
        done: list[Any] = []  # CompletedPartTypeDef
        carry = bytearray()

        def send(data: bytes) -> None:
            answer = self.client.upload_part(Bucket=bucket, Key=key, PartNumber=len(done) + 1,
                                             UploadId=manifest.multipart, Body=data)  # fmt: skip
            done.append({"PartNumber": len(done) + 1, "ETag": answer["ETag"]})

        for source, size in sources:
            position = 0
            while position < size:
                if len(done) >= MAX_PARTS:
                    raise StorageError(f"upload {upload_id}: more than {MAX_PARTS} parts to concatenate")
                take = min(size - position, MIN_PART - len(carry)) if carry or size - position < MIN_PART else 0
                if take:
                    carry += pieces.read_range(self.client, bucket, source, position, position + take)
                    position += take
                    if len(carry) >= MIN_PART:
                        send(bytes(carry))
                        carry.clear()
                    continue
                length = min(size - position, MAX_PART)
                answer = self.client.upload_part_copy(
                    Bucket=bucket, Key=key, UploadId=manifest.multipart, PartNumber=len(done) + 1,
                    CopySource={"Bucket": bucket, "Key": source},
                    CopySourceRange=f"bytes={position}-{position + length - 1}",
                )  # fmt: skip
                done.append({"PartNumber": len(done) + 1, "ETag": answer["CopyPartResult"]["ETag"]})
                position += length
        if carry or not done:
            send(bytes(carry))
        self.client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=manifest.multipart, MultipartUpload={"Parts": done}
        )

    def abort(self, upload_id: str) -> None:
        """Abort every multipart upload of this upload's key (there may be one no plan names: a crash)."""
        key, bucket = self.blob_key(upload_id), self.location.bucket
        answer = self.client.list_multipart_uploads(Bucket=bucket, Prefix=key)
        for upload in answer.get("Uploads", []):
            if upload["Key"] == key:
                try:
                    self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"])
                except Exception as exc:
                    if error_code(exc) != "NoSuchUpload":
                        raise

    def open_multiparts(self) -> list[tuple[str, float]]:
        """(upload id, start time) of every multipart upload under ``blobs/``."""
        found: list[tuple[str, float]] = []
        prefix = self.location.key("blobs", "")
        key_marker, id_marker = "", ""
        for _ in range(1000):
            page = self.client.list_multipart_uploads(Bucket=self.location.bucket, Prefix=prefix,
                                                      KeyMarker=key_marker, UploadIdMarker=id_marker)  # fmt: skip
            found += [(u["Key"].removeprefix(prefix), u["Initiated"].timestamp()) for u in page.get("Uploads", [])]
            key_marker, id_marker = page.get("NextKeyMarker", ""), page.get("NextUploadIdMarker", "")
            if not page.get("IsTruncated") or not key_marker:
                break
        return found
