"""``cpupaint watch``: the last 60 s of every core as a Task Manager-style grid, in the terminal and as a PNG.

One sample per second, taken on the wall clock's second boundaries (as the viewers refresh), from the same
counters the painting is measured with. SMT siblings (logical cores sharing a physical core) are named under each
graph.

PNG layout (fixed, whatever the number of samples): the cores in a near-square grid of ``columns = ceil(sqrt(n))``
by ``rows = ceil(n / columns)`` panels, each ``PANEL_WIDTH`` × (``LABEL_HEIGHT`` + ``GRAPH_HEIGHT``) pixels — 4 px
per second, 1 px per percent — with ``MARGIN`` pixels around and between panels; see ``png_size``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cpupaint import counters
from cpupaint.counters import CoreTimes
from cpupaint.render import grid_shape

HISTORY_SECONDS = 60
PIXELS_PER_SECOND = 4
PANEL_WIDTH = HISTORY_SECONDS * PIXELS_PER_SECOND
GRAPH_HEIGHT = 100
LABEL_HEIGHT = 20
MARGIN = 8
TERMINAL_ROWS = 4
BLOCKS = " ▁▂▃▄▅▆▇█"
GRAPH_LINE = (17, 125, 187)
GRAPH_FILL = (188, 219, 240)
GRID_LINE = (222, 236, 246)


def png_size(cores: int) -> tuple[int, int]:
    """Width and height in pixels of the PNG for ``cores`` cores (2 cores: 504 × 136)."""
    columns, rows = grid_shape(cores)
    width = columns * PANEL_WIDTH + (columns + 1) * MARGIN
    height = rows * (LABEL_HEIGHT + GRAPH_HEIGHT) + (rows + 1) * MARGIN
    return width, height


@dataclass
class History:
    """The last 60 one-second utilisation samples of each core, oldest first."""

    cores: list[int]
    samples: dict[int, deque[float]] = field(default_factory=dict)
    _last: dict[int, CoreTimes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.samples = {core: deque(maxlen=HISTORY_SECONDS) for core in self.cores}
        self._last = counters.read_all()

    def sample(self) -> None:
        now = counters.read_all()
        for core in self.cores:
            if core in now and core in self._last:
                self.samples[core].append(counters.utilisation(self._last[core], now[core]))
        self._last = now

    def latest(self, core: int) -> float | None:
        values = self.samples[core]
        return values[-1] if values else None


def sibling_note(core: int, siblings: dict[int, list[int]]) -> str:
    others = [other for other in siblings.get(core, [core]) if other != core]
    return "SMT sibling of " + ", ".join(f"CPU {other}" for other in others) if others else "no SMT sibling"


def _title(core: int, history: History) -> str:
    latest = history.latest(core)
    return f"CPU {core}" + ("" if latest is None else f"  {latest:3.0f} %")


def terminal_graph(values: list[float]) -> Text:
    """Columns of block characters, TERMINAL_ROWS high, newest second at the right, 60 columns wide."""
    padded = [0.0] * (HISTORY_SECONDS - len(values)) + values
    eighths = [round(value / 100 * TERMINAL_ROWS * 8) for value in padded]
    lines = []
    for row in reversed(range(TERMINAL_ROWS)):
        lines.append("".join(BLOCKS[max(0, min(8, filled - row * 8))] for filled in eighths))
    return Text("\n".join(lines), style="cyan")


def terminal_grid(history: History, siblings: dict[int, list[int]], width: int) -> RenderableType:
    columns = max(1, min(grid_shape(len(history.cores))[0], width // (HISTORY_SECONDS + 4)))
    grid = Table.grid(padding=(0, 1))
    for _ in range(columns):
        grid.add_column()
    panels = [
        Panel(
            terminal_graph(list(history.samples[core])),
            title=_title(core, history),
            subtitle=sibling_note(core, siblings),
            width=HISTORY_SECONDS + 4,
        )
        for core in history.cores
    ]
    for first in range(0, len(panels), columns):
        grid.add_row(*panels[first : first + columns])
    return Group(Text("cpupaint watch — last 60 s per core, newest at the right"), grid)


def _panel_origin(index: int, columns: int) -> tuple[int, int]:
    column, row = index % columns, index // columns
    return MARGIN + column * (PANEL_WIDTH + MARGIN), MARGIN + row * (LABEL_HEIGHT + GRAPH_HEIGHT + MARGIN)


def _draw_panel(draw: ImageDraw.ImageDraw, left: int, top: int, values: list[float], label: str) -> None:
    font = ImageFont.load_default()
    draw.text((left + 2, top + 3), label, fill=(40, 40, 40), font=font)
    graph_top = top + LABEL_HEIGHT
    right, bottom = left + PANEL_WIDTH - 1, graph_top + GRAPH_HEIGHT - 1
    for percent in range(10, 100, 10):
        y = bottom - percent * (GRAPH_HEIGHT - 1) // 100
        draw.line([(left, y), (right, y)], fill=GRID_LINE)
    for age, value in enumerate(reversed(values)):
        x_right = right - age * PIXELS_PER_SECOND
        height = round(value / 100 * (GRAPH_HEIGHT - 1))
        if height > 0:
            box = (x_right - PIXELS_PER_SECOND + 1, bottom - height, x_right, bottom)
            draw.rectangle(box, fill=GRAPH_FILL)
            draw.line([(box[0], box[1]), (box[2], box[1])], fill=GRAPH_LINE)
    draw.rectangle((left, graph_top, right, bottom), outline=GRAPH_LINE)


def write_png(history: History, siblings: dict[int, list[int]], path: Path) -> None:
    columns, _ = grid_shape(len(history.cores))
    image = Image.new("RGB", png_size(len(history.cores)), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for index, core in enumerate(history.cores):
        left, top = _panel_origin(index, columns)
        others = [other for other in siblings.get(core, [core]) if other != core]
        label = _title(core, history) + (f"  SMT: {', '.join(map(str, others))}" if others else "")
        _draw_panel(draw, left, top, list(history.samples[core]), label)
    image.save(path, format="PNG")


def watch(
    seconds: float,
    console: Console,
    stopped: Callable[[], bool],
    cores: list[int] | None = None,
) -> History:
    """Sample once per wall-clock second for ``seconds`` (or until ``stopped()``), showing the grid live."""
    chosen = cores if cores is not None else counters.online_cores()
    siblings = counters.smt_siblings(chosen)
    history = History(chosen)
    end = time.time() + seconds
    with Live(terminal_grid(history, siblings, console.width), console=console, auto_refresh=False) as live:
        while not stopped() and time.time() < end:
            due = min(end, math.floor(time.time()) + 1.0)
            while not stopped() and time.time() < due:
                time.sleep(min(0.05, max(0.0, due - time.time())))
            history.sample()
            live.update(terminal_grid(history, siblings, console.width), refresh=True)
    return history
