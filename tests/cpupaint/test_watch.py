"""``cpupaint watch`` samples every core once a second and writes the grid as a PNG of the documented size."""

from __future__ import annotations

import subprocess
from collections import deque
from pathlib import Path

from PIL import Image

from cpupaint import counters, watch
from tests.cpupaint.helpers import COMMAND


def test_watch_writes_a_png_of_the_documented_size(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    finished = subprocess.run(
        [*COMMAND, "watch", "--seconds", "2", "--png", str(out)], capture_output=True, text=True, timeout=20
    )
    assert finished.returncode == 0, finished.stderr
    cores = len(counters.online_cores())
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == watch.png_size(cores)
    if cores == 2:
        assert watch.png_size(cores) == (504, 136)  # the size docs/cpupaint.md gives for two cores
    for core in range(cores):
        assert f"CPU {core}" in finished.stdout  # the terminal grid was shown too


def _filled(image: Image.Image, x: int, y: int) -> bool:
    return image.getpixel((x, y)) == watch.GRAPH_FILL


def test_the_png_graph_is_filled_up_to_each_seconds_level(tmp_path: Path) -> None:
    history = watch.History([0, 1])
    history.samples[0] = deque([100.0] * 30 + [50.0] * 30, maxlen=watch.HISTORY_SECONDS)
    history.samples[1] = deque([0.0] * 60, maxlen=watch.HISTORY_SECONDS)
    out = tmp_path / "grid.png"
    watch.write_png(history, {0: [0, 1], 1: [0, 1]}, out)
    with Image.open(out) as opened:
        image = opened.convert("RGB")
    left, top = watch.MARGIN, watch.MARGIN + watch.LABEL_HEIGHT
    bottom = top + watch.GRAPH_HEIGHT - 1
    old, new = left + 10, left + watch.PANEL_WIDTH - 10  # a second in the first and in the second half
    assert _filled(image, old, top + 5) and _filled(image, old, bottom - 5)
    assert not _filled(image, new, top + 20) and _filled(image, new, bottom - 20)
    second_panel = left + watch.PANEL_WIDTH + watch.MARGIN
    assert not _filled(image, second_panel + 10, bottom - 2)


def test_smt_siblings_come_from_the_kernel_topology() -> None:
    siblings = counters.smt_siblings(counters.online_cores())
    for core, group in siblings.items():
        text = Path(f"/sys/devices/system/cpu/cpu{core}/topology/thread_siblings_list").read_text().strip()
        expected: list[int] = []
        for part in text.split(","):
            first, _, last = part.partition("-")
            expected += list(range(int(first), int(last or first) + 1))
        assert group == expected
        assert core in group
    assert watch.sibling_note(0, {0: [0, 4]}) == "SMT sibling of CPU 4"
    assert watch.sibling_note(1, {1: [1]}) == "no SMT sibling"
