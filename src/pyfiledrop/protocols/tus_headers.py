"""tus 1.0.0 header values: pure parsing and formatting, no I/O (https://tus.io/protocols/resumable-upload)."""

from __future__ import annotations

import base64
import binascii
import re
from email.utils import formatdate

from pyfiledrop.domain.ids import UploadId, parse_upload_id
from pyfiledrop.errors import BadRequest

TUS_VERSION = "1.0.0"
_KEY = re.compile(r"[^\s,]+")


def parse_non_negative(name: str, value: str | None) -> int | None:
    """Upload-Offset / Upload-Length: 'The value MUST be a non-negative integer.'"""
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise BadRequest(f"{name} {value!r} is not a non-negative integer")
    return int(text)


def parse_metadata(value: str | None) -> dict[str, str]:
    """'key base64value,key2 base64value2,key3' — keys unique, values base64, a key may stand alone."""
    result: dict[str, str] = {}
    if not value or not value.strip():
        return result
    for pair in value.split(","):
        key, _, encoded = pair.strip().partition(" ")
        if not _KEY.fullmatch(key):
            raise BadRequest(f"Upload-Metadata has an empty or invalid key in {pair!r}")
        if key in result:
            raise BadRequest(f"Upload-Metadata names the key {key!r} twice")
        try:
            result[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise BadRequest(f"Upload-Metadata value of {key!r} is not valid base64 of UTF-8 text") from None
    return result


def format_metadata(metadata: dict[str, str]) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}".rstrip() for key, value in metadata.items())


def parse_concat(value: str) -> tuple[str, list[UploadId]]:
    """'partial' or 'final;<url> <url> …' (URLs absolute or path-only); returns the part ids in order."""
    text = value.strip()
    if text == "partial":
        return "partial", []
    if not text.startswith("final;"):
        raise BadRequest(f"Upload-Concat {value!r} is neither 'partial' nor 'final;<urls>'")
    urls = text[len("final;") :].split()
    if not urls:
        raise BadRequest("Upload-Concat final lists no partial uploads")
    ids = []
    for url in urls:
        path = url.split("?", 1)[0].rstrip("/")
        if "/files/" not in path:
            raise BadRequest(f"Upload-Concat part {url!r} is not an upload URL of this server")
        ids.append(parse_upload_id(path.rsplit("/", 1)[-1]))
    return "final", ids


def http_date(timestamp: float) -> str:
    return formatdate(timestamp, usegmt=True)
