"""The ``cpupaint`` command: the one module that parses, prints and chooses the exit code.

Exit codes: 0 done (also after Ctrl-C or SIGTERM, which end a run early on purpose), 1 failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import NoReturn

from rich.console import Console

from cpupaint import __version__, counters, render, runner, schedule, watch
from cpupaint.runner import StopRequest
from cpupaint.worker import AFFINITY_NOTE, can_pin

EXIT_DONE = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A bad argument; reported on stderr with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _usage_exit(message)


def _usage_exit(message: str) -> NoReturn:
    print(f"cpupaint: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percent (a number from 0 to 100)") from None
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"{text} is outside 0–100 %")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.0 < value <= schedule.MAX_DURATION:
        raise argparse.ArgumentTypeError(f"{text} s is outside the allowed range (more than 0, at most 3600)")
    return value


def core_list(text: str) -> list[int]:
    cores: list[int] = []
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            cores.extend(range(int(first), int(last or first) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of core numbers such as 0,1 or 0-3") from None
    if len(set(cores)) != len(cores):
        raise argparse.ArgumentTypeError(f"{text!r} names a core twice")
    return cores


def _paint_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--duration", type=seconds, default=schedule.DEFAULT_DURATION, metavar="S",
        help="seconds to paint (default 60, the width of Task Manager's graph; at most 3600)")  # fmt: skip
    add("--cores", type=core_list, metavar="LIST", help="logical cores to paint, e.g. 0,1 or 0-3 (default: all)")
    add("--tick", type=seconds, default=schedule.DEFAULT_TICK, metavar="T",
        help="seconds per picture column and per control window, on wall-clock boundaries (default 1, the "
             "refresh of the usual viewers)")  # fmt: skip
    add("--open-loop", action="store_true",
        help="spin for the target share of each period, no feedback (comparison only: other load adds on)")  # fmt: skip


def _picture_flags(parser: argparse.ArgumentParser) -> None:
    _paint_flags(parser)
    add = parser.add_argument
    add("--static", action="store_true",
        help="hold each core at one grey level instead: the cores' graphs, in a near-square grid, "
             "are the pixels")  # fmt: skip
    add("--invert", action="store_true", help="light is busy (default: dark is busy)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cpupaint", description="Paint pictures into the per-core CPU graphs of system monitors.")
    parser.add_argument("--version", action="version", version=f"cpupaint {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    levels = commands.add_parser("levels", help="hold cores at given percents")
    levels.add_argument("percents", nargs="*", type=percent, metavar="P", help="percent for core 0, 1, … (or --cores)")
    levels.add_argument("--all", type=percent, metavar="P", help="hold every core (or every one of --cores) at P")
    levels.add_argument("--json", action="store_true", help="print targets and measured means as JSON at the end")
    _paint_flags(levels)
    text = commands.add_parser("text", help="write text across cores × time")
    text.add_argument("text", help="text to paint (built-in 5×7 font: letters, digits, common punctuation)")
    _picture_flags(text)
    image = commands.add_parser("image", help="paint a picture across cores × time")
    image.add_argument("path", type=Path, metavar="PIC", help="picture file (any format Pillow reads)")
    _picture_flags(image)
    watcher = commands.add_parser("watch", help="show the last 60 s per core as a grid")
    watcher.add_argument("--seconds", type=seconds, default=schedule.MAX_DURATION, metavar="N",
                         help="stop after this many seconds (default 3600, or Ctrl-C)")  # fmt: skip
    watcher.add_argument("--png", type=Path, metavar="OUT", help="also write the grid as a PNG image at the end")
    return parser


def _resolve_cores(chosen: list[int] | None) -> list[int]:
    online = counters.online_cores()
    usable = set(counters.usable_cores())
    if chosen is None:
        return [core for core in online if core in usable]
    for core in chosen:
        if core not in online:
            raise UsageError(f"core {core} does not exist (this machine has cores {', '.join(map(str, online))})")
        if core not in usable:
            raise UsageError(f"core {core} is not available to this process (CPU affinity or container limits)")
    return chosen


def _levels_schedule(args: argparse.Namespace) -> schedule.Schedule:
    if args.all is not None and args.percents:
        raise UsageError("give either percents per core or --all, not both")
    if args.all is not None:
        cores = _resolve_cores(args.cores)
        return schedule.constant(cores, [args.all] * len(cores), args.duration, args.tick)
    if not args.percents:
        raise UsageError("give a percent per core (e.g. levels 40 70) or --all P")
    cores = _resolve_cores(args.cores if args.cores is not None else list(range(len(args.percents))))
    if len(cores) != len(args.percents):
        raise UsageError(f"{len(args.percents)} percents for {len(cores)} cores given with --cores")
    return schedule.constant(cores, list(args.percents), args.duration, args.tick)


def _picture_schedule(args: argparse.Namespace) -> schedule.Schedule:
    cores = _resolve_cores(args.cores)
    picture = render.text_image(args.text) if args.command == "text" else render.load_image(args.path)
    if args.static:
        grey = render.static_levels(picture, len(cores), args.invert)
        return schedule.constant(cores, grey, args.duration, args.tick)
    columns = schedule.tick_count(args.duration, args.tick)
    return schedule.picture(cores, render.levels(picture, len(cores), columns, args.invert), args.tick)


@contextmanager
def _stop_on_signals(stop: StopRequest) -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP end the run early and cleanly; the previous handlers come back afterwards."""
    names = [name for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)]

    def handler(number: int, _frame: FrameType | None) -> None:
        stop.request(signal.Signals(number).name)

    previous = {name: signal.signal(getattr(signal, name), handler) for name in names}
    try:
        yield
    finally:
        for name, old in previous.items():
            signal.signal(getattr(signal, name), old)


def _announce(plan: schedule.Schedule) -> Callable[[list[tuple[int, int]], float], None]:
    def started(workers: list[tuple[int, int]], begin: float) -> None:
        pids = " ".join(str(pid) for _core, pid in workers)
        cores = ",".join(str(core) for core, _pid in workers)
        clock = time.strftime("%H:%M:%S", time.localtime(begin))
        noun = "core" if len(workers) == 1 else "cores"
        print(f"cpupaint: painting {noun} {cores} for {plan.duration:g} s from {clock} (unix {begin:.3f}; Ctrl-C "
              f"stops); worker pids: {pids}", file=sys.stderr, flush=True)  # fmt: skip

    return started


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _paint(args: argparse.Namespace, plan: schedule.Schedule) -> int:
    if args.tick > args.duration:
        raise UsageError(f"--tick {args.tick:g} is longer than --duration {args.duration:g}")
    if not can_pin():
        print(f"cpupaint: note: {AFFINITY_NOTE}", file=sys.stderr)
    stop = StopRequest()
    with _stop_on_signals(stop):
        outcome = runner.paint(plan, stop, closed_loop=not args.open_loop, on_started=_announce(plan))
    if outcome.failure:
        print(f"cpupaint: error: {outcome.failure}", file=sys.stderr)
        return EXIT_FAILED
    if outcome.stopped_by:
        print(f"cpupaint: stopped early by {outcome.stopped_by}; every worker has exited", file=sys.stderr)
    if getattr(args, "json", False):
        report = [
            {
                "core": core,
                "target": _number(plan.mean_target(index)),
                "measured": round(outcome.measured.get(core, 0.0), 1),
            }
            for index, core in enumerate(plan.cores)
        ]
        print(json.dumps({"cores": report}))
    return EXIT_DONE


def _watch(args: argparse.Namespace) -> int:
    if args.png is not None and not args.png.parent.is_dir():
        raise UsageError(f"cannot write {str(args.png)!r}: the folder {str(args.png.parent)!r} does not exist")
    stop = StopRequest()
    with _stop_on_signals(stop):
        history = watch.watch(args.seconds, Console(), lambda: stop.reason is not None)
    if args.png is not None:
        try:
            watch.write_png(history, counters.smt_siblings(history.cores), args.png)
        except OSError as error:
            print(f"cpupaint: error: cannot write {str(args.png)!r}: {error}", file=sys.stderr)
            return EXIT_FAILED
        width, height = watch.png_size(len(history.cores))
        print(f"cpupaint: wrote {args.png} ({width} × {height} px)", file=sys.stderr)
    return EXIT_DONE


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        match args.command:
            case "levels":
                return _paint(args, _levels_schedule(args))
            case "text" | "image":
                return _paint(args, _picture_schedule(args))
            case _:
                return _watch(args)
    except (UsageError, render.PictureError) as error:
        _usage_exit(str(error))
