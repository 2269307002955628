"""Trim and rotate a file into a new one: the output appears under its name complete, or not at all.

The copy is written to a temporary name beside the output (same folder, so the rename is atomic) and renamed
when complete; any failure or cancellation removes it. The output may not be the input itself.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pyfiledrop.video import media
from pyfiledrop.video.media import Cancelled, MediaError, NotCopyable, Plan, Progress

ROTATIONS = (0, 90, 180, 270)
SNAPS = ("before", "after")


@dataclass(frozen=True, slots=True)
class Result:
    output: Path
    start: float | None = None  # trims: the keyframe the copy really starts on
    end: float | None = None
    rotation: int | None = None


def check_paths(source: Path, output: Path) -> None:
    """Refuse before any work: the output is the input, or its folder does not exist, or its suffix is unknown."""
    if not source.is_file():
        raise NotCopyable(f"{source}: no such file")
    if output.exists() and output.samefile(source):
        raise NotCopyable("the output is the input file: write the copy to another name")
    if not output.parent.is_dir():
        raise NotCopyable(f"{output.parent}: no such folder for the output")
    media.muxer_for(output)


def snapped_start(source: Path, start: float, end: float, snap: str = "before") -> float:
    """The keyframe a trim of [start, end) starts on (``before``: at or before ``start``; ``after``: at or after)."""
    check_range(start, end, snap)
    return media.keyframe_at(source, start, end, snap)


def check_range(start: float, end: float, snap: str) -> None:
    if snap not in SNAPS:
        raise NotCopyable(f"snap must be 'before' or 'after', not {snap!r}")
    if not (start >= 0 and end > start):
        raise NotCopyable(f"the end ({end:g} s) must come after the start ({start:g} s), both 0 or more")


def trim(source: Path, output: Path, start: float, end: float, snap: str = "before",
         progress: Progress | None = None, cancelled: Cancelled | None = None) -> Result:  # fmt: skip
    check_paths(source, output)
    used = snapped_start(source, start, end, snap)
    _write(source, output, Plan(start=used, end=end), progress, cancelled)
    return Result(output, start=used, end=end)


def copy_range(source: Path, output: Path, start: float, end: float, progress: Progress | None = None,
               cancelled: Cancelled | None = None) -> Result:  # fmt: skip
    """A trim whose start is already a keyframe (``snapped_start`` found it)."""
    check_paths(source, output)
    _write(source, output, Plan(start=start, end=end), progress, cancelled)
    return Result(output, start=start, end=end)


def rotate(source: Path, output: Path, degrees: int, progress: Progress | None = None,
           cancelled: Cancelled | None = None) -> Result:  # fmt: skip
    if degrees not in ROTATIONS:
        raise NotCopyable(f"degrees must be one of 0, 90, 180, 270, not {degrees}")
    check_paths(source, output)
    _write(source, output, Plan(rotation=degrees), progress, cancelled)
    return Result(output, rotation=degrees)


def temporary_name(output: Path) -> Path:
    """Beside the output, hidden, unique; the suffix stays so that tools recognise what it is."""
    return output.with_name(f".{output.stem}.{secrets.token_hex(4)}.partial{output.suffix}")


def _write(source: Path, output: Path, plan: Plan, progress: Progress | None, cancelled: Cancelled | None) -> None:
    muxer = media.muxer_for(output)
    temporary = temporary_name(output)
    try:
        media.copy(source, temporary, muxer, plan, progress, cancelled)
        with temporary.open("rb+") as written:
            os.fsync(written.fileno())  # the rename must not publish a name whose bytes a crash could lose
        temporary.replace(output)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


__all__ = ["ROTATIONS", "SNAPS", "MediaError", "NotCopyable", "Result", "check_paths", "rotate", "trim"]
