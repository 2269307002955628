"""Hash algorithms accepted from clients (tus checksum extension) and the whole-file sha256."""

from __future__ import annotations

import base64
import hashlib
from typing import Protocol

from pyfiledrop.errors import BadRequest, ChecksumMismatch, ChecksumUnsupported

# sha1 is the one the tus spec requires; the others are what clients commonly send.
ALGORITHMS: tuple[str, ...] = ("sha1", "sha256", "md5", "sha512")


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...
    def copy(self) -> Hasher: ...


def new_hasher(algorithm: str) -> Hasher:
    if algorithm not in ALGORITHMS:
        raise ChecksumUnsupported(algorithm, ALGORITHMS)
    return hashlib.new(algorithm, usedforsecurity=False)


def parse_checksum_header(value: str) -> tuple[str, bytes]:
    """``Upload-Checksum: <algorithm> <base64 digest>`` → (algorithm, digest).

    An unsupported algorithm or a header that is not ``algorithm digest`` is a bad request (400); a digest of
    the wrong length for a supported algorithm cannot match any data, so it is a checksum mismatch (tus 460),
    refused before a byte of the body is stored."""
    algorithm, _, encoded = value.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in ALGORITHMS:
        raise ChecksumUnsupported(algorithm, ALGORITHMS)
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except ValueError as exc:
        raise BadRequest(f"Upload-Checksum digest {encoded!r} is not valid base64") from exc
    if not digest:
        raise BadRequest("Upload-Checksum names an algorithm but no digest")
    if len(digest) != hashlib.new(algorithm, usedforsecurity=False).digest_size:
        raise ChecksumMismatch(algorithm)
    return algorithm, digest
