"""The times people type for a cut: ``62.5`` (seconds), ``MM:SS(.mmm)`` or ``HH:MM:SS(.mmm)``."""

from __future__ import annotations

import math
import re

_CLOCK = re.compile(r"(?:(?P<hours>\d+):)?(?P<minutes>\d{1,2}):(?P<seconds>\d{1,2}(?:\.\d+)?)")
_SECONDS = re.compile(r"\d+(?:\.\d*)?|\.\d+")


def parse_time(text: str) -> float:
    """Seconds from ``62.5``, ``1:02.5`` or ``0:01:02.5``; ValueError with a readable message otherwise."""
    given = text.strip()
    if _SECONDS.fullmatch(given):
        return float(given)
    clock = _CLOCK.fullmatch(given)
    if clock is None:
        raise ValueError(f"{text!r} is not a time: use seconds (62.5), MM:SS or HH:MM:SS(.mmm)")
    minutes, seconds = int(clock["minutes"]), float(clock["seconds"])
    if seconds >= 60 or (clock["hours"] is not None and minutes >= 60):
        raise ValueError(f"{text!r} is not a time: minutes and seconds go up to 59")
    return int(clock["hours"] or 0) * 3600 + minutes * 60 + seconds


def format_time(seconds: float) -> str:
    """``HH:MM:SS.mmm`` (hours only when there are any), for messages and file names."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{seconds!r} is not a time")
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    text = f"{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"
    return f"{hours}:{text}" if hours else text
