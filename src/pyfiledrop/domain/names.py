"""Client file names → names safe to show and to store. A client name is never used as a path."""

from __future__ import annotations

import re
import unicodedata

_MAX_NAME_BYTES = 200
_MAX_DEPTH = 32  # folder levels kept in a relative path
_MAX_PATH_BYTES = 1000
_RESERVED = {
    "CON", "PRN", "AUX", "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}  # fmt: skip
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


def display_name(raw: str | None) -> str:
    """The name as the uploader meant it, minus what can hurt: path parts, control characters."""
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    if not (name.isascii() and name.isprintable()):  # (the common case needs no look at each character)
        name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp"))
    name = name.strip().strip(".")
    return _truncate(name) or "upload"


def relative_path(raw: str | None) -> str:
    """A file's path inside a folder it came in ('dir/sub/b.txt': a folder dropped on the page, ``upload -r``), kept
    rather than flattened, so that two ``b.txt`` do not collide. Each folder part becomes a ``storage_name`` (safe on
    every system: no ``..``, no control characters, no Windows-reserved or -forbidden names); parts that are empty,
    ``.`` or ``..`` are dropped, so no path leaves its folder, and a leading ``/`` or drive means nothing. The file's
    own name is a ``display_name``. A name without folders comes out as ``display_name`` gives it."""
    text = (raw or "").replace("\\", "/")
    if "/" not in text:
        return display_name(text)
    *folders, name = [part for part in text.split("/") if part.strip().strip(".")] or [""]
    kept = [storage_name(folder) for folder in folders[-_MAX_DEPTH:]]
    path = "/".join([*kept, display_name(name)])
    while len(path.encode()) > _MAX_PATH_BYTES and kept:
        kept.pop(0)  # the deepest folders say the most about the file: the outer ones go first
        path = "/".join([*kept, display_name(name)])
    return path


def base_name(path: str) -> str:
    """The file's own name from a ``relative_path``."""
    return path.rsplit("/", 1)[-1]


def storage_name(raw: str | None) -> str:
    """A single path component that is safe on Linux, macOS and Windows."""
    name = _UNSAFE.sub("_", display_name(raw))
    name = name.strip(" .") or "upload"
    stem = name.split(".", 1)[0].upper()
    if stem in _RESERVED:
        name = "_" + name
    return name


def _truncate(name: str) -> str:
    encoded = name.encode()
    if len(encoded) <= _MAX_NAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext.encode()) > 20:
        return encoded[:_MAX_NAME_BYTES].decode(errors="ignore")
    keep = _MAX_NAME_BYTES - len(ext.encode()) - 1
    return stem.encode()[:keep].decode(errors="ignore") + "." + ext
