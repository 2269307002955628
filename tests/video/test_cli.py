"""``pyfiledrop video probe|trim|rotate`` as a user runs it: a real subprocess, its exit code, stdout and stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pyfiledrop.video.timecode import format_time, parse_time
from tests.video.helpers import of_type, packets


def run(*args: str | Path, python: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    command = python or [sys.executable, "-m", "pyfiledrop"]
    return subprocess.run([*command, "video", *map(str, args)], capture_output=True, text=True, timeout=60)


def test_probe_json_has_the_contract_keys(clips: dict[str, Path]) -> None:
    done = run("probe", clips["portrait.mp4"], "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["rotation"] == 90
    assert info["duration"] == pytest.approx(10.0, abs=0.05)
    assert info["keyframes"] == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert [(s["type"], s["codec"]) for s in info["streams"]] == [("video", "h264"), ("audio", "aac")]
    plain = run("probe", clips["portrait.mp4"])
    assert plain.returncode == 0 and "rotation: 90" in plain.stdout and "h264" in plain.stdout


@pytest.mark.parametrize(("start", "snap", "used"), [("0:03.1", "before", 2.0), ("00:00:03.100", "after", 4.0),
                                                     ("3.1", None, 2.0)])  # fmt: skip
def test_trim_prints_the_start_it_really_used(
    clips: dict[str, Path], tmp_path: Path, start: str, snap: str | None, used: float
) -> None:
    output = tmp_path / "cut.webm"
    done = run("trim", clips["vp9.webm"], "--start", start, "--end", "0:07.5", "-o", output, "--json",
               *(["--snap", snap] if snap else []))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"start": used, "end": 7.5, "output": str(output)}
    first = of_type(packets(output), "video")[0]
    assert first.sha256 == next(s.sha256 for s in of_type(packets(clips["vp9.webm"]), "video") if s.pts == used)
    plain = run("trim", clips["vp9.webm"], "--start", start, "--end", "7.5", "-o", output,
                *(["--snap", snap] if snap else []))  # fmt: skip
    assert plain.returncode == 0 and format_time(used) in plain.stdout


def test_rotate_json(clips: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "turned.mkv"
    done = run("rotate", clips["hevc.mkv"], "--degrees", "270", "-o", output, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"rotation": 270, "output": str(output)}
    assert json.loads(run("probe", output, "--json").stdout)["rotation"] == 270


@pytest.mark.parametrize(
    "args",
    [
        ("trim", "{clip}", "--start", "1:99", "--end", "5", "-o", "{out}"),  # not a time
        ("trim", "{clip}", "--start", "5", "--end", "4", "-o", "{out}"),  # end before start
        ("trim", "{clip}", "--start", "8.5", "--end", "9", "--snap", "after", "-o", "{out}"),  # no keyframe after
        ("trim", "{clip}", "--start", "1", "--end", "4", "--snap", "middle", "-o", "{out}"),
        ("trim", "{clip}", "--start", "60", "--end", "70", "-o", "{out}"),  # past the end of a 10 s clip
        ("rotate", "{clip}", "--degrees", "45", "-o", "{out}"),
        ("rotate", "{clip}", "--degrees", "90", "-o", "{clip}"),  # the output is the input
        ("rotate", "{clip}", "--degrees", "90", "-o", "{folder}/out.avi"),  # a container pyfiledrop does not write
        ("rotate", "{folder}/missing.mp4", "--degrees", "90", "-o", "{out}"),
        ("rotate", "{folder}/garbage.mp4", "--degrees", "90", "-o", "{out}"),  # not a video
        ("trim", "{folder}/text.mp4", "--start", "0", "--end", "1", "-o", "{out}"),  # not a video either
        ("probe", "{folder}/garbage.mp4"),
        ("rotate", "{folder}/cut-short.mkv", "--degrees", "90", "-o", "{out}"),  # its second half is missing
        ("trim", "{folder}/cut-short.mkv", "--start", "1", "--end", "9", "-o", "{out}"),
    ],
)
def test_bad_arguments_and_non_videos_exit_2_and_leave_nothing(
    clips: dict[str, Path], tmp_path: Path, args: tuple[str, ...]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "garbage.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    (work / "text.mp4").write_text("just some text\n" * 100)
    whole = clips["hevc.mkv"].read_bytes()
    (work / "cut-short.mkv").write_bytes(whole[: len(whole) // 2])
    before = sorted(p.name for p in work.iterdir())
    filled = [a.format(clip=clips["h264.mp4"], out=work / "out.mp4", folder=work) for a in args]
    done = run(*filled)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.strip() and "Traceback" not in done.stderr
    assert done.stdout == ""
    assert sorted(p.name for p in work.iterdir()) == before


def test_without_pyav_it_says_how_to_install_it(clips: dict[str, Path], tmp_path: Path) -> None:
    no_av = [sys.executable, "-c", "import sys; sys.modules['av'] = None; from pyfiledrop.cli import main; "
             "raise SystemExit(main(sys.argv[1:]))"]  # fmt: skip
    done = run("rotate", clips["h264.mp4"], "--degrees", "90", "-o", tmp_path / "out.mp4", python=no_av)
    assert done.returncode == 1
    assert "pip install 'pyfiledrop[video]'" in done.stderr
    assert list(tmp_path.iterdir()) == []


TIMES = [("62.5", 62.5), ("0", 0.0), (".5", 0.5), ("1:02", 62.0), ("01:02.250", 62.25), ("1:00:02.5", 3602.5),
         ("10:00:00", 36000.0)]  # fmt: skip


@pytest.mark.parametrize(("text", "seconds"), TIMES)
def test_times_people_type(text: str, seconds: float) -> None:
    assert parse_time(text) == seconds


@pytest.mark.parametrize("text", ["", "-1", "1:60", "1:60:00", "abc", "1::2", "1:2:3:4", "nan", "1e3"])
def test_times_that_are_not(text: str) -> None:
    with pytest.raises(ValueError, match="not a time"):
        parse_time(text)


def test_format_time() -> None:
    assert format_time(62.25) == "01:02.250"
    assert format_time(3602.5) == "1:00:02.500"


def test_serve_refuses_a_negative_video_jobs(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "pyfiledrop", "serve", "-s", str(tmp_path / "s"), "--video-jobs", "-1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--video-jobs" in done.stderr
