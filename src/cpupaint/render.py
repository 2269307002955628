"""Pictures and text into per-core target levels: row i of the picture is core i's graph, column k is tick k.

Dark is busy: a black pixel asks for 100 %, white for 0 %, greys in between (``invert`` swaps that), so dark ink
on a light page becomes filled graph where the ink was. Transparent areas count as white.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from cpupaint import font


class PictureError(ValueError):
    """The picture cannot be read, or the text cannot be drawn with the built-in font."""


def load_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as opened:
            opened.load()
            return flatten(opened)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
        raise PictureError(f"cannot read image {str(path)!r}: {error}") from error


def flatten(image: Image.Image) -> Image.Image:
    """Grey levels ("L"), transparent parts over white."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        page = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(page, rgba).convert("L")
    return image.convert("L")


def text_image(text: str) -> Image.Image:
    """``text`` drawn with the built-in font, black ink on white, one pixel per font cell."""
    missing = font.unknown_characters(text)
    if missing:
        shown = " ".join(repr(character) for character in missing)
        raise PictureError(f"the built-in font has no glyph for {shown}")
    if not text:
        raise PictureError("the text is empty")
    rows = font.rasterise(text)
    pixels = bytes(0 if inked else 255 for row in rows for inked in row)
    return Image.frombytes("L", (len(rows[0]), len(rows)), pixels)


def _percent(value: int, invert: bool) -> float:
    darkness = value if invert else 255 - value
    return round(100.0 * darkness / 255, 1)


def levels(image: Image.Image, cores: int, columns: int, invert: bool = False) -> list[list[float]]:
    """Target percent per core (rows) and tick (columns): the picture resized to ``columns`` × ``cores``, each
    pixel the mean grey of the area it covers."""
    grey = flatten(image)
    if grey.size != (columns, cores):
        grey = grey.resize((columns, cores), Image.Resampling.BOX)
    data = grey.tobytes()  # mode "L": one byte per pixel, row after row
    return [
        [_percent(int(value), invert) for value in data[row * columns : (row + 1) * columns]] for row in range(cores)
    ]


def grid_shape(cores: int) -> tuple[int, int]:
    """(columns, rows) of a near-square grid of ``cores`` cells in reading order, as Task Manager lays out its
    per-core graphs."""
    columns = max(1, math.ceil(math.sqrt(cores)))
    return columns, max(1, math.ceil(cores / columns))


def static_levels(image: Image.Image, cores: int, invert: bool = False) -> list[float]:
    """One level per core for ``--static``: each core's graph is one pixel of the picture, the cores in a
    near-square grid read left to right, top to bottom."""
    columns, rows = grid_shape(cores)
    grid = levels(image, rows, columns, invert)
    return [grid[core // columns][core % columns] for core in range(cores)]
