"""Small test videos made in the test run with PyAV: a fixed GOP (a keyframe every ``gop_seconds``), no B-frames
unless asked, a sine tone beside, so every cut and copy can be checked packet by packet."""

from __future__ import annotations

import array
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av


@dataclass(frozen=True)
class Recipe:
    container: str  # file suffix: mp4, mkv, webm, mov
    video: str  # encoder: libx264, libx265, libvpx-vp9, libsvtav1
    audio: str | None  # encoder: aac, libopus
    seconds: float = 10.0
    fps: int = 25
    gop_seconds: float = 2.0
    width: int = 160
    height: int = 96
    rotation: int = 0  # clockwise degrees a viewer should turn it (a phone's portrait clip: 90)
    tag: str | None = None  # e.g. "hvc1"
    b_frames: int = 0
    chapters: tuple[tuple[float, float, str], ...] = ()  # (start s, end s, title)


_VIDEO_OPTIONS = {
    "libx264": {"preset": "ultrafast", "tune": "zerolatency"},
    "libx265": {"preset": "ultrafast", "x265-params": "log-level=error"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"},
    "libsvtav1": {"preset": "12"},
}


def make(path: Path, recipe: Recipe) -> Path:
    frames = round(recipe.seconds * recipe.fps)
    gop = round(recipe.gop_seconds * recipe.fps)
    with av.open(str(path), "w") as out:
        out.metadata["title"] = "pyfiledrop test clip"
        out.metadata["creation_time"] = "2024-05-06T07:08:09.000000Z"
        if recipe.chapters:
            milli = Fraction(1, 1000)
            out.set_chapters([
                {"id": n + 1, "start": round(a * 1000), "end": round(b * 1000), "time_base": milli,
                 "metadata": {"title": title}} for n, (a, b, title) in enumerate(recipe.chapters)
            ])  # fmt: skip
        video = out.add_stream(recipe.video, rate=recipe.fps, options=dict(_VIDEO_OPTIONS.get(recipe.video, {})))
        video.width, video.height, video.pix_fmt = recipe.width, recipe.height, "yuv420p"
        video.gop_size = gop
        video.codec_context.max_b_frames = recipe.b_frames
        fixed = f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={recipe.b_frames}"
        extra = {"libx264": {"x264-params": fixed}, "libx265": {"x265-params": f"log-level=error:{fixed}"},
                 "libsvtav1": {"svtav1-params": f"keyint={gop}:scd=0"}}.get(recipe.video, {})  # fmt: skip
        video.codec_context.options = {**video.codec_context.options, **extra}
        if recipe.tag:
            video.codec_tag = recipe.tag
        if recipe.rotation:
            video.set_display_rotation(-recipe.rotation)
        audio = None
        if recipe.audio:
            audio = out.add_stream(recipe.audio, rate=48000)
            audio.layout = "stereo"
            audio.metadata["language"] = "eng"
        sample_rate, samples_done = 48000, 0
        for index in range(frames):
            frame = _picture(index, recipe)
            frame.pts = index
            frame.time_base = Fraction(1, recipe.fps)
            for packet in video.encode(frame):
                out.mux(packet)
            if audio is not None:
                until = round((index + 1) / recipe.fps * sample_rate)
                while samples_done + 960 <= until:
                    out.mux(audio.encode(_tone(samples_done, 960, sample_rate)))
                    samples_done += 960
        out.mux(video.encode(None))
        if audio is not None:
            out.mux(audio.encode(None))
    return path


def _picture(index: int, recipe: Recipe) -> av.VideoFrame:
    """A yuv420p frame that changes every frame (a moving bar), so no two packets are alike."""
    frame = av.VideoFrame(recipe.width, recipe.height, "yuv420p")
    luma = frame.planes[0]
    bar = (index * 4) % recipe.width
    row = bytes(255 if bar <= x < bar + 6 else (x + index * 3) % 256 for x in range(recipe.width))
    luma.update(row.ljust(luma.line_size, b"\0") * recipe.height)
    for plane in frame.planes[1:]:
        plane.update(bytes([128]) * plane.buffer_size)
    return frame


_TONES: dict[int, bytes] = {}


def _tone(start: int, count: int, rate: int) -> av.AudioFrame:
    """A 500 Hz tone (a whole number of periods per frame) whose loudness steps frame by frame."""
    step = (start // count) % 8
    if step not in _TONES:
        samples = array.array("f")
        for n in range(count):
            value = (0.05 + 0.03 * step) * math.sin(2 * math.pi * 500 * n / rate)
            samples.extend((value, value))
        _TONES[step] = samples.tobytes()
    frame = av.AudioFrame(format="flt", layout="stereo", samples=count)
    frame.planes[0].update(_TONES[step])
    frame.sample_rate = rate
    frame.pts = start
    frame.time_base = Fraction(1, rate)
    return frame
