"""Upload ids: 144 random bits, URL-safe, checked before they touch storage or SQL."""

from __future__ import annotations

import re
import secrets
from typing import NewType

from pyfiledrop.errors import InvalidUploadId

UploadId = NewType("UploadId", str)

_ID_BYTES = 18  # 144 bits, 24 base64url characters
_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{24}")
# Dropzone's dzuuid is chosen by the browser (a UUID v4); accept anything id-like, never as a path.
_ALIAS_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,128}")


def new_upload_id() -> UploadId:
    return UploadId(secrets.token_urlsafe(_ID_BYTES))


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
