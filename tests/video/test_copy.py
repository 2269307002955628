"""Trim and rotate by stream copy, checked packet by packet on real files in every container and codec."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import pytest

from pyfiledrop.video import media, ops
from tests.video.helpers import decoded_rotation, ffprobe_rotation, of_type, packets, tkhd_matrix

FRAME = 1 / 25
ALL = ["h264.mp4", "hevc.mp4", "hevc.mkv", "vp9.webm", "av1.mkv"]
needs_ffprobe = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="FFmpeg's ffprobe is not installed")


@pytest.mark.parametrize("name", ALL)
def test_probe_reports_streams_duration_and_keyframes(clips: dict[str, Path], name: str) -> None:
    info = media.probe(clips[name])
    assert info.duration == pytest.approx(10.0, abs=0.05)
    assert info.keyframes == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert [s.type for s in info.streams] == ["video", "audio"]
    assert info.rotation == 0
    assert info.to_json()["streams"][0]["codec"] == name.split(".")[0]


@pytest.mark.parametrize("name", ALL)
def test_trim_keeps_exactly_the_packets_of_the_range_byte_for_byte(
    clips: dict[str, Path], tmp_path: Path, name: str
) -> None:
    source, output = clips[name], tmp_path / ("cut" + Path(name).suffix)
    result = ops.trim(source, output, 3.1, 7.5)
    assert result.start == 2.0  # snapped back to the keyframe at or before 3.1
    before, after = packets(source), packets(output)
    for kind in ("video", "audio"):
        expected = [s.sha256 for s in of_type(before, kind) if 2.0 - 1e-6 <= s.pts < 7.5]
        assert [s.sha256 for s in of_type(after, kind)] == expected, kind
    video, audio = of_type(after, "video"), of_type(after, "audio")
    assert video[0].pts == 0.0 and video[0].keyframe
    assert 5.5 - FRAME <= video[-1].pts < 5.5  # the end cuts by presentation time
    assert 0.0 <= audio[0].pts < FRAME  # audio shifted by the same amount: in sync within a frame
    assert media.probe(output).duration == pytest.approx(5.5, abs=0.05)
    assert sorted(p.name for p in tmp_path.iterdir()) == [output.name]  # no temporary file left


@pytest.mark.parametrize(("snap", "start", "used"), [("before", 3.1, 2.0), ("after", 3.1, 4.0), ("after", 4.0, 4.0),
                                                     ("before", 4.0, 4.0), ("before", 0.0, 0.0)])  # fmt: skip
def test_snap_picks_the_keyframe_and_the_copy_starts_there(
    clips: dict[str, Path], tmp_path: Path, snap: str, start: float, used: float
) -> None:
    source, output = clips["h264.mp4"], tmp_path / "cut.mp4"
    assert ops.trim(source, output, start, 9.0, snap).start == used
    first = of_type(packets(output), "video")[0]
    original = next(s for s in of_type(packets(source), "video") if abs(s.pts - used) < 1e-6)
    assert first.sha256 == original.sha256 and first.keyframe


def test_trim_across_containers_keeps_packets_and_tags_hevc_hvc1_for_apple(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    output = tmp_path / "from-mkv.mp4"
    ops.trim(clips["hevc.mkv"], output, 2.0, 6.0)
    with av.open(str(output)) as container:
        assert container.streams.video[0].codec_context.codec_tag == "hvc1"
    expected = [s.sha256 for s in of_type(packets(clips["hevc.mkv"]), "video") if 2.0 <= s.pts < 6.0]
    assert [s.sha256 for s in of_type(packets(output), "video")] == expected
    kept = tmp_path / "kept.mp4"
    ops.rotate(clips["hevc.mp4"], kept, 90)
    with av.open(str(kept)) as container:
        assert container.streams.video[0].codec_context.codec_tag == "hvc1"


def test_metadata_and_languages_are_kept(clips: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "cut.mp4"
    ops.trim(clips["h264.mp4"], output, 1.0, 5.0)
    with av.open(str(output)) as container:
        assert container.metadata["title"] == "pyfiledrop test clip"
        assert container.metadata["creation_time"].startswith("2024-05-06T07:08:09")
        assert container.streams.audio[0].metadata["language"] == "eng"


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_chapters_are_clipped_to_the_cut_and_shifted(clips: dict[str, Path], tmp_path: Path, suffix: str) -> None:
    output = tmp_path / f"cut{suffix}"
    ops.trim(clips["hevc.mkv"], output, 3.1, 7.5)  # starts at 2.0
    with av.open(str(output)) as container:
        kept = [(float(c["start"] * c["time_base"]), float(c["end"] * c["time_base"]), c["metadata"]["title"])
                for c in container.chapters()]  # fmt: skip
    assert kept == [(0.0, 1.0, "One"), (1.0, 4.0, "Two"), (4.0, 5.5, "Three")]


@pytest.mark.parametrize("name", ["h264.mp4", "hevc.mkv", "vp9.webm"])
def test_rotate_sets_the_display_matrix_and_copies_every_packet(
    clips: dict[str, Path], tmp_path: Path, name: str
) -> None:
    output = tmp_path / ("turned" + Path(name).suffix)
    ops.rotate(clips[name], output, 90)
    assert media.probe(output).rotation == 90
    assert decoded_rotation(output) == -90  # FFmpeg's angle: counter-clockwise
    before, after = packets(clips[name]), packets(output)
    for kind in ("video", "audio"):
        assert [s.sha256 for s in of_type(after, kind)] == [s.sha256 for s in of_type(before, kind)]


def test_rotate_writes_the_mp4_track_matrix(clips: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "turned.mp4"
    ops.rotate(clips["h264.mp4"], output, 90)
    a, b, _, c, d, *_ = tkhd_matrix(output)
    assert (a, b, c, d) == (0, 65536, -65536, 0)  # 16.16 fixed point: a quarter turn clockwise on screen
    ops.rotate(clips["h264.mp4"], output, 270)
    a, b, _, c, d, *_ = tkhd_matrix(output)
    assert (a, b, c, d) == (0, -65536, 65536, 0)


@needs_ffprobe
@pytest.mark.parametrize(("degrees", "ffprobe_says"), [(90, -90), (180, 180), (270, 90)])
def test_ffprobe_reads_the_rotation_as_a_phone_writes_it(
    clips: dict[str, Path], tmp_path: Path, degrees: int, ffprobe_says: float
) -> None:
    for suffix in (".mp4", ".mkv"):
        output = tmp_path / f"turned{suffix}"
        ops.rotate(clips["h264.mp4"], output, degrees)
        read = ffprobe_rotation(output)
        assert read is not None and abs(read) == abs(ffprobe_says)  # a half turn reads 180 or -180
        assert degrees == 180 or read == ffprobe_says
        assert media.probe(output).rotation == degrees


@needs_ffprobe
def test_a_phone_portrait_clip_probes_as_90_and_rotating_replaces_it(clips: dict[str, Path], tmp_path: Path) -> None:
    portrait = clips["portrait.mp4"]
    assert ffprobe_rotation(portrait) == -90
    assert media.probe(portrait).rotation == 90
    upright = tmp_path / "upright.mp4"
    ops.rotate(portrait, upright, 0)
    assert media.probe(upright).rotation == 0
    assert (ffprobe_rotation(upright) or 0.0) == 0.0
    assert tkhd_matrix(upright)[:5] == (65536, 0, 0, 0, 65536)
    flipped = tmp_path / "flipped.mp4"
    ops.rotate(portrait, flipped, 180)
    assert media.probe(flipped).rotation == 180


def test_cancelling_a_copy_leaves_nothing(clips: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "never.mp4"
    with pytest.raises(media.CopyCancelled):
        ops.rotate(clips["h264.mp4"], output, 90, cancelled=lambda: True)
    assert list(tmp_path.iterdir()) == []


def test_progress_goes_from_0_to_1(clips: dict[str, Path], tmp_path: Path) -> None:
    seen: list[float] = []
    ops.trim(clips["h264.mp4"], tmp_path / "cut.mp4", 2.0, 8.0, progress=seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) >= 3


def test_a_cut_that_cannot_be_made_is_refused(clips: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "cut.mp4"
    with pytest.raises(media.NotCopyable, match="keyframe"):
        ops.trim(clips["h264.mp4"], output, 8.5, 9.5, "after")  # no keyframe after 8.5
    with pytest.raises(media.NotCopyable, match="after the start"):
        ops.trim(clips["h264.mp4"], output, 5.0, 4.0)
    with pytest.raises(media.NotCopyable, match="input file"):
        ops.rotate(clips["h264.mp4"], clips["h264.mp4"], 90)
    with pytest.raises(media.NotCopyable, match=r"\.mp4"):
        ops.rotate(clips["h264.mp4"], tmp_path / "cut.avi", 90)
    assert list(tmp_path.iterdir()) == []
