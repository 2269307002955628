"""Events an admin reads in the server log, with their context (docs/logging.md): uploads created, resumed,
completed, cancelled, expired, abandoned and deleted; drop links created and revoked; wrong passwords; refusals.

Each is one ``logging`` record on the ``pyfiledrop.events`` logger: the message says what happened
("upload completed"), ``record.event`` names it for machines ("upload.completed") and ``record.fields`` holds the
context, which the text format writes as ``key=value`` and the JSON format as keys. Never a token or a password:
an upload is named by its id, its owner by the owner id (the token is that id *and* a signature), a drop link by
its label.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pyfiledrop.domain.model import ConcatKind, Upload

log = logging.getLogger("pyfiledrop.events")
_DROP_OWNER_PREFIX = "drop-"  # meta/drops.py: uploads through a drop link are owned by "drop-<link id>"
_MAX_LABELS = 10_000
_labels: dict[str, str] = {}  # drop-link owner → its label, learnt as links are made and used


def name_drop(owner: str, label: str) -> None:
    """Remember the label of the drop link that owns ``owner``'s uploads, for the events about them."""
    if len(_labels) >= _MAX_LABELS:
        _labels.clear()  # bounded; the labels come back as the links are used
    _labels[owner] = label


def emit(event: str, level: int = logging.INFO, /, **fields: Any) -> None:
    if log.isEnabledFor(level):
        log.log(level, event.replace(".", " ").replace("_", " "), extra={"event": event, "fields": fields})


def upload(what: str, item: Upload, level: int = logging.INFO, /, **extra: Any) -> None:
    """``upload.<what>`` with the upload's context; a tus part (raw material of a parallel upload) only at debug."""
    if item.concat is ConcatKind.PARTIAL:
        level = logging.DEBUG
    if not log.isEnabledFor(level):
        return
    fields: dict[str, Any] = {"id": item.id, "name": item.filename, "size": item.size}
    if item.owner.startswith(_DROP_OWNER_PREFIX):
        fields["drop"] = _labels.get(item.owner, item.owner)
    elif item.owner:
        fields["owner"] = item.owner
    fields["protocol"] = str(item.protocol)
    fields.update(extra)
    log.log(level, f"upload {what}", extra={"event": f"upload.{what}", "fields": fields})


def completed(item: Upload, *, deduplicated: bool) -> None:
    """Duration from creation, so the average speed of a resumed upload counts its pause too."""
    if item.concat is ConcatKind.PARTIAL and not log.isEnabledFor(logging.DEBUG):
        return
    if not log.isEnabledFor(logging.INFO):
        return
    seconds = max(time.time() - item.created_at, 1e-6)
    size = item.size or 0
    upload("completed", item, duration_s=seconds, speed=_speed(size / seconds), sha256=item.sha256,
           deduplicated=deduplicated)  # fmt: skip


def _speed(per_second: float) -> str:
    for unit in ("B/s", "KiB/s", "MiB/s"):
        if per_second < 1024:
            return f"{per_second:.1f} {unit}"
        per_second /= 1024
    return f"{per_second:.1f} GiB/s"


class Throttle:
    """Says yes to a key at most once per ``seconds``: a client that polls an upload's offset logs one resume,
    not one a second. Bounded: the oldest keys are forgotten first."""

    def __init__(self, seconds: float = 60.0, keys: int = 4096) -> None:
        self.seconds = seconds
        self.keys = keys
        self._last: dict[str, float] = {}

    def first_in_a_while(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        last = self._last.pop(key, None)
        fresh = last is None or now - last >= self.seconds
        self._last[key] = now if fresh or last is None else last
        while len(self._last) > self.keys:
            del self._last[next(iter(self._last))]
        return fresh
