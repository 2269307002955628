"""The one module that knows FFmpeg (through PyAV): probe a file, copy a time range of it, set its display rotation.

Packets go from the input to the output as they are (stream copy), one at a time, so memory stays flat whatever
the file's size; the only decoding is of the first video frame in ``probe``, to read its display matrix.

Rotation: FFmpeg's display matrix angle is counter-clockwise; ours is clockwise, what a viewer sees. A phone's
portrait clip reads ``rotation=-90`` in ffprobe and 90 here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar, cast

import av
import av.error
from av.codec.context import CodecContext
from av.container import InputContainer, OutputContainer
from av.packet import Packet
from av.stream import Stream
from av.video.stream import VideoStream

_P = TypeVar("_P", bound="Packet[Any]")
Progress = Callable[[float], None]
Cancelled = Callable[[], bool]

# Output containers by file suffix; what is not here is refused before anything is written.
_MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
_APPLE = frozenset({"mp4", "mov"})
_CHECK_EVERY = 64  # packets between looks at the cancel flag and progress reports
_SEEK_MARGIN = 1.0  # seconds before the start keyframe the copy seeks to: interleaved audio is not missed
_AV_STREAM_TYPES = ("video", "audio")


class MediaError(Exception):
    """The copy failed (a read or write error, a broken file past its header): exit 1 / job failed."""


class NotCopyable(MediaError):
    """Not a video pyfiledrop can copy, or a cut that cannot be made: exit 2 / 422."""


class CopyCancelled(MediaError):
    """The job was cancelled while copying."""


@dataclass(frozen=True, slots=True)
class StreamInfo:
    index: int
    type: str
    codec: str
    tag: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    rotation: int | None = None
    channels: int | None = None
    sample_rate: int | None = None
    language: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in _fields(self).items() if value is not None}


@dataclass(frozen=True, slots=True)
class MediaInfo:
    container: str
    duration: float
    rotation: int
    keyframes: list[float]
    streams: list[StreamInfo]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def video(self) -> StreamInfo:
        return next(s for s in self.streams if s.type == "video")

    def to_json(self) -> dict[str, Any]:
        video = self.video
        return {
            "container": self.container,
            "duration": self.duration,
            "rotation": self.rotation,
            "width": video.width,
            "height": video.height,
            "fps": video.fps,
            "keyframes": self.keyframes,
            "streams": [s.to_json() for s in self.streams],
            "metadata": self.metadata,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """What one copy does: the time range (None: the whole file) and the rotation to set (None: keep)."""

    start: float | None = None  # the keyframe to start on, in seconds (``keyframe_at`` finds it)
    end: float | None = None
    rotation: int | None = None  # clockwise degrees, replacing any the file had


def _fields(info: StreamInfo) -> dict[str, Any]:
    return {name: getattr(info, name) for name in info.__slots__}


# -- probing ------------------------------------------------------------------------------------------------------


def _open(path: Path) -> InputContainer:
    try:
        return av.open(str(path), "r")
    except FileNotFoundError:
        raise NotCopyable(f"{path}: no such file") from None
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise NotCopyable(f"{path.name}: not a video file FFmpeg can read ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, av.error.FFmpegError) and exc.strerror:
        return str(exc.strerror)
    return str(exc) or type(exc).__name__


def _first_video(container: InputContainer) -> VideoStream:
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:  # cover art is not the video
            return stream
    raise NotCopyable("no video stream in this file")


def probe(path: Path, *, keyframes: bool = True) -> MediaInfo:
    """Container, duration, streams, display rotation and (unless told not to) the video's keyframe times."""
    with _open(path) as container:
        video = _first_video(container)
        rotation = _read_rotation(container, video)
        streams = [_stream_info(s, rotation if s is video else None) for s in container.streams]
        duration = _duration(container, video)
        metadata = {str(k): str(v) for k, v in container.metadata.items()}
        name = container.format.name
        times = _keyframes(container, video) if keyframes else []
    return MediaInfo(name, duration, rotation, times, streams, metadata)


def _stream_info(stream: Stream, rotation: int | None) -> StreamInfo:
    codec = _codec(stream)
    context = _context(stream)
    raw_tag = context.codec_tag if context is not None else None
    tag = raw_tag if raw_tag and raw_tag.isprintable() and raw_tag.strip("\0") else None
    language = stream.metadata.get("language")
    match stream:
        case VideoStream():
            rate = stream.average_rate or stream.guessed_rate
            fps = round(float(rate), 3) if rate else None
            return StreamInfo(stream.index, "video", codec, tag, stream.codec_context.width,
                              stream.codec_context.height, fps, rotation, language=language)  # fmt: skip
        case av.audio.stream.AudioStream():
            return StreamInfo(stream.index, "audio", codec, tag, channels=stream.codec_context.channels,
                              sample_rate=stream.codec_context.sample_rate, language=language)  # fmt: skip
    return StreamInfo(stream.index, stream.type, codec, tag, language=language)


def _duration(container: InputContainer, video: VideoStream) -> float:
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    if video.duration is not None and video.time_base is not None:
        return float(video.duration * video.time_base)
    return 0.0


def _read_rotation(container: InputContainer, video: VideoStream) -> int:
    """Clockwise degrees from the display matrix, which FFmpeg hands to the first decoded frame."""
    try:
        for packet in container.demux(video):
            for frame in packet.decode():
                return _clockwise(-frame.rotation)
    except av.error.FFmpegError:
        return 0  # a frame that does not decode has no rotation to show; the copy does not need it
    finally:
        container.seek(0)
    return 0


def _clockwise(degrees: float) -> int:
    return round(degrees / 90) * 90 % 360


def _keyframes(container: InputContainer, video: VideoStream) -> list[float]:
    """Presentation times of the video's keyframes, packet by packet; the demuxer skips the other streams' bytes.

    MP4/MOV without B-frames: it skips the other frames' bytes too (its sample table knows which are keyframes), so
    a 1 GiB file takes milliseconds, not a read of the whole file. With B-frames it reports skewed times for the
    keyframes it jumps to, and Matroska cannot skip at all: those are read whole."""
    for stream in container.streams:
        stream.discard = av.stream.Discard.all
    skip_others = "mp4" in container.format.name and not video.codec_context.has_b_frames
    video.discard = av.stream.Discard.nonkey if skip_others else av.stream.Discard.default
    times: list[float] = []
    try:
        for packet in container.demux(video):
            if packet.is_keyframe and packet.pts is not None and packet.time_base is not None:
                times.append(round(float(packet.pts * packet.time_base), 6))
    except av.error.FFmpegError as exc:
        raise NotCopyable(f"the file is damaged: {_reason(exc)}") from None
    return sorted(set(times))


def keyframe_at(path: Path, start: float, end: float, snap: str) -> float:
    """The keyframe a copy from ``start`` really starts on: at or before it (``before``), or the first at or after
    it (``after``). Reads only around ``start``: the demuxer seeks there first."""
    with _open(path) as container:
        video = _first_video(container)
        assert video.time_base is not None
        length = _duration(container, video)
        if length and start >= length:
            raise NotCopyable(f"the start {start:g} s is past the end of the video ({length:g} s)")
        container.seek(max(0, int((start - _SEEK_MARGIN) / video.time_base)), stream=video, backward=True)
        before: float | None = None
        after: float | None = None
        for packet in _packets(container.demux(video)):
            if packet.pts is None or not packet.is_keyframe:
                continue
            at = float(packet.pts * video.time_base)
            if at <= start + 1e-6:
                before = at
            else:
                after = at
                break
            if abs(at - start) <= 1e-6:
                after = at
                break
    # A start before the first keyframe snaps "before" to that keyframe.
    chosen = after if snap == "after" or before is None else before
    if chosen is None or chosen >= end:
        raise NotCopyable(f"no keyframe {'after' if snap == 'after' else 'at or before'} {start:g} s before the "
                          f"end {end:g} s: a copy can only start on a keyframe")  # fmt: skip
    return chosen


def _packets(source: Iterator[_P]) -> Iterator[_P]:
    try:
        yield from source
    except av.error.FFmpegError as exc:
        raise MediaError(f"reading the file failed: {_reason(exc)}") from None


# -- copying ------------------------------------------------------------------------------------------------------


def muxer_for(target: Path) -> str:
    """The FFmpeg muxer a file name asks for; NotCopyable for a suffix pyfiledrop does not write."""
    muxer = _MUXERS.get(target.suffix.lower())
    if muxer is None:
        raise NotCopyable(f"cannot write {target.name!r}: name the output .mp4, .mov, .m4v, .mkv or .webm")
    return muxer


def suffix_for(info: MediaInfo) -> str:
    """The file suffix for a copy in the container the input is in (for a name that had none)."""
    if "mp4" in info.container or "mov" in info.container:
        return ".mp4"
    webm = {"vp8", "vp9", "av1", "opus", "vorbis"}
    if "webm" in info.container and all(s.codec in webm for s in info.streams):
        return ".webm"
    return ".mkv"


def copy(source: Path, target: Path, muxer: str, plan: Plan, progress: Progress | None = None,
         cancelled: Cancelled | None = None) -> None:  # fmt: skip
    """Copy ``source`` into ``target`` (a new file, written by ``muxer``) per ``plan``, packet by packet.

    The caller owns ``target``'s name: it is a temporary name, renamed when this returns (ops.py)."""
    with _open(source) as container:
        video = _first_video(container)
        try:
            output = av.open(str(target), "w", format=muxer)
        except (av.error.FFmpegError, ValueError) as exc:
            raise MediaError(f"cannot write {target.name}: {_reason(exc)}") from None
        with output:
            copier = _Copier(container, video, output, plan)
            copier.run(progress, cancelled)


class _Copier:
    """One copy: the output's streams mirror the input's, the packets pass through with shifted timestamps."""

    def __init__(self, source: InputContainer, video: VideoStream, output: OutputContainer, plan: Plan) -> None:
        self.source = source
        self.video = video
        self.output = output
        self.plan = plan
        self.start = plan.start or 0.0
        self.end = plan.end if plan.end is not None else math.inf
        self.streams: dict[int, Stream] = {}  # input index → output stream
        self.done: set[int] = set()  # audio and video streams past the end
        self.video_reached: float | None = None  # the latest video presentation time read
        self.started = plan.start is None  # the start keyframe has been seen
        self.span = (self.end if plan.end is not None else _duration(source, video)) - self.start
        self._mirror_streams()

    def _mirror_streams(self) -> None:
        output, muxer = self.output, self.output.format.name
        output.metadata.update({str(k): str(v) for k, v in self.source.metadata.items()})
        for stream in self.source.streams:
            try:
                copied = output.add_stream_from_template(stream, opaque=True)
            except (ValueError, av.error.FFmpegError) as exc:
                if stream.type in _AV_STREAM_TYPES:
                    raise NotCopyable(f"{_codec(stream)} {stream.type} cannot be copied into {muxer}: {exc}") from None
                continue  # subtitles, data, attachments: kept where the container allows
            copied.metadata.update({str(k): str(v) for k, v in stream.metadata.items()})
            copied.disposition = stream.disposition
            if stream is self.video:
                self._video_details(copied, muxer)
            self.streams[stream.index] = copied
        self._copy_chapters()

    def _video_details(self, copied: Stream, muxer: str) -> None:
        assert isinstance(copied, VideoStream)
        tag = self.video.codec_context.codec_tag
        if muxer in _APPLE and _codec(self.video) == "hevc":
            copied.codec_context.codec_tag = tag if tag in ("hvc1", "hev1") else "hvc1"  # Apple players want hvc1
        if self.plan.rotation is not None:
            copied.set_display_rotation(-self.plan.rotation)  # PyAV's angle is counter-clockwise

    def _copy_chapters(self) -> None:
        kept: list[dict[str, Any]] = []
        for chapter in self.source.chapters():
            base = chapter["time_base"] or Fraction(1, av.time_base)
            start, end = float(chapter["start"] * base), float(chapter["end"] * base)
            if end <= self.start or start >= self.end:
                continue
            shifted_start = max(start, self.start) - self.start
            shifted_end = min(end, self.end) - self.start
            kept.append({**chapter, "id": len(kept) + 1, "start": round(shifted_start / base),
                         "end": round(shifted_end / base)})  # fmt: skip
        if kept:
            self.output.set_chapters(kept)  # type: ignore[arg-type]

    def run(self, progress: Progress | None, cancelled: Cancelled | None) -> None:
        if self.plan.start:
            assert self.video.time_base is not None
            at = max(0, int((self.start - _SEEK_MARGIN) / self.video.time_base))
            self.source.seek(at, stream=self.video, backward=True)
        wanted = [s for s in self.source.streams if s.index in self.streams]
        gating = {s.index for s in wanted if s.type in _AV_STREAM_TYPES}
        for count, packet in enumerate(_packets(self.source.demux(wanted))):
            if count % _CHECK_EVERY == 0:
                if cancelled is not None and cancelled():
                    raise CopyCancelled("cancelled")
                if progress is not None:
                    progress(self._fraction(packet))
            self._one(packet)
            if gating <= self.done:
                break
        else:
            self._check_complete()
        if not self.started:
            raise NotCopyable("the start keyframe was not found in the file")
        if progress is not None:
            progress(1.0)

    def _check_complete(self) -> None:
        """The file ended (EOF) well before its header said it would: cut short or damaged (a copy would silently
        be short too). Loose on purpose: a video track a little shorter than the audio is normal."""
        length = _duration(self.source, self.video)
        expected = min(self.end, length) - self.start
        if length <= 0 or self.video_reached is None:
            return
        if self.video_reached - self.start < expected - max(2.0, 0.1 * expected):
            raise NotCopyable(f"the file is damaged or cut short: its video ends at {self.video_reached:.1f} s, "
                              f"its header says {length:.1f} s")  # fmt: skip

    def _fraction(self, packet: Packet[Stream]) -> float:
        if packet.pts is None or packet.time_base is None or not self.span > 0:
            return 0.0
        return min(max((float(packet.pts * packet.time_base) - self.start) / self.span, 0.0), 1.0)

    def _one(self, packet: Packet[Stream]) -> None:
        if packet.size == 0 or packet.time_base is None:
            return  # a demuxer's flush packet
        index = packet.stream_index
        base = packet.time_base
        pts = packet.pts if packet.pts is not None else packet.dts
        if pts is None:
            return
        at = float(pts * base)
        if packet.stream is self.video:
            self.video_reached = at if self.video_reached is None else max(self.video_reached, at)
        if packet.dts is not None and float(packet.dts * base) >= self.end:
            self.done.add(index)  # decode order: every later packet of this stream is presented later still
        if packet.stream is self.video and not self.started:
            if not packet.is_keyframe or abs(at - self.start) > 1e-6:
                return  # the copy starts on its keyframe: what comes before it in decode order would not decode
            self.started = True
        if at >= self.end or (self.plan.start is not None and at < self.start - 1e-6):
            return  # a whole copy keeps an encoder's priming packets too (AAC's start before 0)
        shift = round(self.start / base)
        packet.pts = pts - shift
        if packet.dts is not None:
            packet.dts -= shift
        packet.stream = self.streams[index]
        try:
            self.output.mux(packet)
        except av.error.FFmpegError as exc:
            raise MediaError(f"writing the copy failed: {_reason(exc)}") from None


def _context(stream: Stream) -> CodecContext | None:
    """Data and attachment streams have none (PyAV's stubs say otherwise)."""
    return cast("CodecContext | None", stream.codec_context)


def _codec(stream: Stream) -> str:
    """The codec's own name (``av1``), not the decoder's (``libdav1d``)."""
    context = _context(stream)
    if context is not None:
        return context.codec.canonical_name
    return stream.name or "unknown"
