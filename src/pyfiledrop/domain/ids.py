"""Upload ids: 144 random bits, URL-safe, checked before they touch storage or SQL."""

from __future__ import annotations

import base64
import os
import re
import threading
from typing import NewType

from pyfiledrop.errors import InvalidUploadId

UploadId = NewType("UploadId", str)

_ID_BYTES = 18  # 144 bits, 24 base64url characters
_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{24}")
# Dropzone's dzuuid is chosen by the browser (a UUID v4); accept anything id-like, never as a path.
_ALIAS_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,128}")


class _RandomBytes:
    """os.urandom taken 4 KiB at a time and handed out in slices. Each getrandom() call releases the GIL, and on
    the event loop, with worker threads busy, getting it back can take a while: two per small upload (its id and
    the sender's token) were measurable. Same source, same quality; reset in a forked child."""

    _REFILL = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""
        os.register_at_fork(after_in_child=self._forget)

    def take(self, n: int) -> bytes:
        with self._lock:
            if len(self._pool) < n:
                self._pool = os.urandom(max(self._REFILL, n))
            taken, self._pool = self._pool[:n], self._pool[n:]
            return taken

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""


_RANDOM = _RandomBytes()


def token_urlsafe(nbytes: int) -> str:
    """As ``secrets.token_urlsafe``: ``nbytes`` random bytes, base64url without padding."""
    return base64.urlsafe_b64encode(_RANDOM.take(nbytes)).rstrip(b"=").decode("ascii")


def new_upload_id() -> UploadId:
    return UploadId(token_urlsafe(_ID_BYTES))


def parse_upload_id(value: str) -> UploadId:
    if not _ID_PATTERN.fullmatch(value):
        raise InvalidUploadId(value)
    return UploadId(value)


def is_upload_id(value: str) -> bool:
    return _ID_PATTERN.fullmatch(value) is not None


def parse_alias(value: str) -> str:
    if not _ALIAS_PATTERN.fullmatch(value):
        raise InvalidUploadId(value)
    return value
