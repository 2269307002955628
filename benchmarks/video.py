"""Lossless trim and rotate of a large video vs a plain `cp` of the same file, and peak RSS by input size.

    .venv/bin/python benchmarks/video.py                       # 1 GiB; RSS at 256 MiB and 2 GiB
    .venv/bin/python benchmarks/video.py --size 512 --rss 256,1024

The input is made once (cached in benchmarks/.work/video): a 10 s 640x360 H.264 (lossless, noise: big packets)
+ AAC clip, its packets then repeated with shifted timestamps until the file has the asked size — a stream copy,
so making it is cheap. Every measured command runs in its own process after a sync, the input in the page cache
(cp reads it first); the wall time is the median of --runs. Peak RSS is the child's ru_maxrss (os.wait4).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work" / "video"
MIB = 1 << 20


def base_clip(path: Path) -> Path:
    """10 s of noise, lossless H.264 (ultrafast, qp 0): ~0.4 MiB per frame at 25 fps, a keyframe every 2 s."""
    if path.exists():
        return path
    sys.path.insert(0, str(ROOT))
    from tests.video.samples import _tone

    temporary = path.with_suffix(".tmp.mp4")
    with av.open(str(temporary), "w") as out:
        video = out.add_stream(
            "libx264",
            rate=25,
            options={"preset": "ultrafast", "qp": "0", "x264-params": "keyint=50:min-keyint=50:scenecut=0"},
        )
        video.width, video.height, video.pix_fmt = 640, 360, "yuv420p"
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        samples = 0
        for index in range(250):
            frame = av.VideoFrame(640, 360, "yuv420p")
            for plane in frame.planes:
                plane.update(os.urandom(plane.buffer_size))
            frame.pts, frame.time_base = index, Fraction(1, 25)
            out.mux(video.encode(frame))
            while samples + 960 <= (index + 1) * 48000 // 25:
                out.mux(audio.encode(_tone(samples, 960, 48000)))
                samples += 960
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    temporary.replace(path)
    return path


def looped(base: Path, size_mib: int) -> Path:
    """The base clip's packets over and over (timestamps shifted by its duration each time) up to ``size_mib``."""
    path = WORK / f"input-{size_mib}MiB.mp4"
    if path.exists():
        return path
    temporary = path.with_suffix(".tmp.mp4")
    with av.open(str(base)) as probe:
        period = probe.duration / av.time_base
    with av.open(str(temporary), "w") as out:
        streams = {}
        for round_ in range(100_000):
            if temporary.exists() and temporary.stat().st_size >= size_mib * MIB:
                break
            with av.open(str(base)) as source:
                if not streams:
                    streams = {s.index: out.add_stream_from_template(s, opaque=True) for s in source.streams}
                for packet in source.demux():
                    if packet.size == 0 or packet.pts is None or (round_ and packet.pts < 0):
                        continue  # AAC's priming packet (before 0) would overlap the previous round's last one
                    shift = round(round_ * period / packet.time_base)
                    packet.pts += shift
                    if packet.dts is not None:
                        packet.dts += shift
                    packet.stream = streams[packet.stream_index]
                    out.mux(packet)
    temporary.replace(path)
    return path


def timed(command: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (KiB) of one child process (and the children it
    waited for: cp under sh)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def pyfiledrop(*args: str) -> list[str]:
    return [sys.executable, "-m", "pyfiledrop", "video", *args]


def measure(source: Path, runs: int) -> dict[str, tuple[float, float, int]]:
    with av.open(str(source)) as container:
        duration = container.duration / av.time_base
    out = WORK / "out.mp4"
    commands = {
        # The copies fsync their output before the rename; so does this cp (coreutils sync FILE), to be fair.
        "cp + sync": ["sh", "-c", 'cp "$0" "$1" && sync "$1"', str(source), str(out)],
        "rotate 90": pyfiledrop("rotate", str(source), "--degrees", "90", "-o", str(out)),
        "trim middle half": pyfiledrop(
            "trim", str(source), "--start", f"{duration / 4:.3f}", "--end", f"{duration * 3 / 4:.3f}", "-o", str(out)
        ),
        "trim all": pyfiledrop("trim", str(source), "--start", "0", "--end", f"{duration + 1:.3f}", "-o", str(out)),
    }
    timed(["cp", str(source), str(out)])  # the input in the page cache for everyone
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    peaks: dict[str, list[int]] = {name: [] for name in commands}
    for _ in range(runs):  # round-robin: a slow moment of a shared machine does not fall on one command only
        for name, command in commands.items():
            out.unlink(missing_ok=True)
            os.sync()  # the previous run's writeback does not land on this one
            elapsed, used, peak = timed(command)
            times[name].append(elapsed)
            cpu[name].append(used)
            peaks[name].append(peak)
    out.unlink(missing_ok=True)
    return {name: (statistics.median(times[name]), statistics.median(cpu[name]), max(peaks[name])) for name in commands}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024, help="input size in MiB for the timing (default 1024)")
    parser.add_argument("--rss", default="256,2048", help="input sizes in MiB for the peak RSS comparison")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    base = base_clip(WORK / "base.mp4")
    source = looped(base, args.size)
    size = source.stat().st_size
    print(f"input: {source} ({size / MIB:.0f} MiB); median of {args.runs} runs, file in the page cache")
    results = measure(source, args.runs)
    copy_time = results["cp + sync"][0]
    print(f"{'command':<18} {'seconds':>8} {'MiB/s in':>9} {'vs cp':>6} {'CPU s':>6} {'peak RSS MiB':>13}")
    for name, (seconds, used, peak) in results.items():
        print(
            f"{name:<18} {seconds:8.2f} {size / MIB / seconds:9.0f} {seconds / copy_time:5.2f}x {used:6.2f} "
            f"{peak / 1024:13.1f}"
        )
    print("\npeak RSS of rotate 90 by input size:")
    for size_mib in (int(s) for s in args.rss.split(",") if s):
        big = looped(base, size_mib)
        out = WORK / "out.mp4"
        _, _, peak = timed(pyfiledrop("rotate", str(big), "--degrees", "90", "-o", str(out)))
        out.unlink(missing_ok=True)
        print(f"  {big.stat().st_size / MIB:7.0f} MiB in: {peak / 1024:6.1f} MiB peak RSS")


if __name__ == "__main__":
    main()
