"""Reading a video back packet by packet, to compare a copy with its source."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import av


@dataclass(frozen=True)
class Seen:
    type: str
    pts: float  # seconds
    keyframe: bool
    sha256: str


def packets(path: Path) -> list[Seen]:
    seen = []
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size and packet.pts is not None:
                seconds = float(packet.pts * packet.time_base)
                seen.append(
                    Seen(packet.stream.type, seconds, packet.is_keyframe, hashlib.sha256(bytes(packet)).hexdigest())
                )
    return seen


def of_type(seen: list[Seen], kind: str) -> list[Seen]:
    return sorted((s for s in seen if s.type == kind), key=lambda s: s.pts)


def decoded_rotation(path: Path) -> int:
    """PyAV's reading: the counter-clockwise angle of the first decoded frame's display matrix."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            return int(frame.rotation)
    raise AssertionError("no frame")


def ffprobe_rotation(path: Path) -> float | None:
    """FFmpeg's own probe: the display matrix rotation of the first video stream (None: no matrix)."""
    tool = shutil.which("ffprobe")
    assert tool is not None
    out = subprocess.run([tool, "-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json", str(path)],
                         capture_output=True, check=True, text=True).stdout  # fmt: skip
    for side in json.loads(out)["streams"][0].get("side_data_list", []):
        if "rotation" in side:
            return float(side["rotation"])
    return None


def tkhd_matrix(path: Path) -> tuple[int, ...]:
    """The first track's matrix, straight from the MP4 bytes (a version 0 or 1 ``tkhd`` box)."""
    data = path.read_bytes()
    at = data.find(b"tkhd")
    assert at > 0
    version = data[at + 4]
    offset = at + 4 + 4 + (32 if version == 1 else 20) + 8 + 8
    return struct.unpack(">9i", data[offset : offset + 36])
