"""``pyfiledrop video probe|trim|rotate``: lossless edits of local files. Exit 0 done, 1 failed, 2 bad arguments or a
file that is not a video pyfiledrop can copy (the message on stderr, no output file left behind)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pyfiledrop.video import INSTALL_HINT, available
from pyfiledrop.video.timecode import format_time, parse_time

EXIT_DONE, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_commands(commands: Any) -> None:
    """Register ``video`` on the main parser's sub-commands (``commands`` is what add_subparsers returned)."""
    video = commands.add_parser("video", help="lossless video probe, trim and rotate (stream copy, no re-encoding)")
    actions = video.add_subparsers(
        dest="video_command", metavar="{probe,trim,rotate}", help="probe a video, or trim or rotate it by stream copy"
    )
    actions.required = True
    probe = actions.add_parser("probe", help="container, duration, streams, rotation and keyframes of a video")
    probe.add_argument("file", type=Path)
    probe.add_argument("--json", action="store_true", help="print one JSON object")
    trim = actions.add_parser("trim", help="copy the part from --start to --end; the start snaps to a keyframe")
    trim.add_argument("file", type=Path)
    trim.add_argument("--start", required=True, type=_time, help="seconds (62.5), MM:SS or HH:MM:SS(.mmm)")
    trim.add_argument("--end", required=True, type=_time, help="seconds (62.5), MM:SS or HH:MM:SS(.mmm)")
    trim.add_argument("-o", "--output", required=True, type=Path, help="the new file (.mp4, .mov, .mkv, .webm)")
    trim.add_argument("--snap", choices=("before", "after"), default="before",
                      help="start on the keyframe at or before --start (default: you get at least what you asked) "
                           "or the first one at or after it")  # fmt: skip
    trim.add_argument("--json", action="store_true", help='print {"start", "end", "output"}')
    rotate = actions.add_parser("rotate", help="set the display rotation (clockwise), replacing the file's own")
    rotate.add_argument("file", type=Path)
    rotate.add_argument("--degrees", required=True, type=int, choices=(0, 90, 180, 270))
    rotate.add_argument("-o", "--output", required=True, type=Path, help="the new file (.mp4, .mov, .mkv, .webm)")
    rotate.add_argument("--json", action="store_true", help='print {"rotation", "output"}')


def _time(text: str) -> float:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(namespace: argparse.Namespace) -> int:
    if not available():
        return _fail(INSTALL_HINT, EXIT_FAILED)
    from pyfiledrop.video.media import MediaError, NotCopyable

    try:
        match namespace.video_command:
            case "probe":
                return _probe(namespace)
            case "trim":
                return _trim(namespace)
            case "rotate":
                return _rotate(namespace)
    except NotCopyable as exc:
        return _fail(str(exc), EXIT_USAGE)
    except (MediaError, OSError) as exc:
        return _fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return _fail("interrupted; nothing was written", EXIT_FAILED)
    return _fail(f"unknown video command {namespace.video_command!r}", EXIT_USAGE)


def _fail(message: str, code: int) -> int:
    print(f"pyfiledrop video: error: {message}", file=sys.stderr)
    return code


def _probe(namespace: argparse.Namespace) -> int:
    from pyfiledrop.video import media

    info = media.probe(namespace.file)
    if namespace.json:
        _print_json(info.to_json())
        return EXIT_DONE
    print(f"{namespace.file}: {info.container}, {format_time(info.duration)} ({info.duration:.3f} s)")
    for stream in info.streams:
        details = stream.to_json()
        described = ", ".join(f"{key} {value}" for key, value in details.items() if key not in ("index", "type"))
        print(f"  #{stream.index} {stream.type}: {described}")
    print(f"  rotation: {info.rotation}° clockwise")
    print(f"  keyframes ({len(info.keyframes)}): {' '.join(f'{t:g}' for t in info.keyframes[:40])}"
          + (" …" if len(info.keyframes) > 40 else ""))  # fmt: skip
    return EXIT_DONE


def _trim(namespace: argparse.Namespace) -> int:
    from pyfiledrop.video import ops

    result = ops.trim(namespace.file, namespace.output, namespace.start, namespace.end, namespace.snap)
    assert result.start is not None
    if namespace.json:
        _print_json({"start": result.start, "end": result.end, "output": str(result.output)})
    else:
        asked = "" if abs(result.start - namespace.start) < 1e-6 else f" (asked {format_time(namespace.start)}: " \
            f"snapped {namespace.snap} to the keyframe)"  # fmt: skip
        print(f"start {format_time(result.start)}{asked}, end {format_time(namespace.end)} → {result.output}")
    return EXIT_DONE


def _rotate(namespace: argparse.Namespace) -> int:
    from pyfiledrop.video import ops

    result = ops.rotate(namespace.file, namespace.output, namespace.degrees)
    if namespace.json:
        _print_json({"rotation": result.rotation, "output": str(result.output)})
    else:
        print(f"rotation {result.rotation}° clockwise → {result.output}")
    return EXIT_DONE


def _print_json(data: dict[str, Any]) -> None:
    print(json.dumps(data))
