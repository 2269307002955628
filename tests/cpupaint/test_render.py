"""Pictures and text become the expected per-core targets (pure: no workers run)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from cpupaint import font, render, schedule


def test_each_picture_row_is_one_core_and_each_column_one_tick() -> None:
    # 4 ticks × 2 cores: black is 100 %, white 0 %, grey 51 is 80 %.
    picture = Image.new("L", (4, 2))
    picture.putdata([0, 255, 51, 255, 255, 0, 255, 204])
    assert render.levels(picture, cores=2, columns=4) == [[100.0, 0.0, 80.0, 0.0], [0.0, 100.0, 0.0, 20.0]]
    assert render.levels(picture, cores=2, columns=4, invert=True) == [
        [0.0, 100.0, 20.0, 100.0],
        [100.0, 0.0, 100.0, 80.0],
    ]


def test_a_larger_picture_is_averaged_into_the_grid() -> None:
    # 4 × 4: the top half black, the bottom-left quarter black → core 0 full, core 1 full then idle.
    picture = Image.new("L", (4, 4), 255)
    picture.paste(0, (0, 0, 4, 2))
    picture.paste(0, (0, 2, 2, 4))
    assert render.levels(picture, cores=2, columns=2) == [[100.0, 100.0], [100.0, 0.0]]
    # Down to one column: core 1 is half busy on average.
    (core_0,), (core_1,) = render.levels(picture, cores=2, columns=1)
    assert core_0 == 100.0
    assert core_1 == pytest.approx(50.0, abs=0.5)  # grey 127.5 rounds to a whole byte


def test_transparent_pixels_count_as_white_and_colours_as_their_grey() -> None:
    picture = Image.new("RGBA", (3, 1))
    picture.putdata([(0, 0, 0, 0), (0, 0, 0, 255), (255, 0, 0, 255)])
    # Pure red has luma 76 (ITU-R 601): 70.2 % busy.
    assert render.levels(picture, cores=1, columns=3) == [[0.0, 100.0, 70.2]]


def test_text_is_drawn_with_the_built_in_font() -> None:
    picture = render.text_image("Hi")
    assert picture.size == (2 * font.GLYPH_WIDTH + font.SPACING, font.GLYPH_HEIGHT)
    targets = render.levels(picture, cores=7, columns=11)
    h_rows = ["#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"]
    i_rows = [".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."]
    expected = [[100.0 if cell == "#" else 0.0 for cell in h + "." + i] for h, i in zip(h_rows, i_rows, strict=True)]
    assert targets == expected


def test_text_squeezed_onto_two_cores_keeps_the_ink_per_core() -> None:
    # "I" on 2 cores × 5 ticks: the 7 font rows are averaged into 2 rows of 3.5 font rows each.
    targets = render.levels(render.text_image("I"), cores=2, columns=5)
    assert targets[0][2] == 100.0  # the stem runs through both halves
    assert targets[1][2] == 100.0
    assert targets[0][0] == 0.0 and targets[1][4] == 0.0
    assert 0.0 < targets[0][1] < 50.0  # the serif is one row of 3.5


def test_static_mode_makes_each_core_one_pixel_of_a_square_grid() -> None:
    picture = Image.new("L", (2, 2))
    picture.putdata([0, 255, 128, 64])
    assert render.grid_shape(4) == (2, 2)
    assert render.static_levels(picture, cores=4) == [100.0, 0.0, 49.8, 74.9]
    assert render.grid_shape(2) == (2, 1)


def test_a_picture_schedule_runs_column_by_column_from_a_tick_boundary() -> None:
    plan = schedule.picture([0, 1], [[10.0, 20.0, 30.0], [90.0, 80.0, 70.0]], tick=1.0)
    begin = plan.start_time(now=1000.25, lead=0.4)
    assert begin == 1001.0
    row = plan.for_core(1, begin, closed_loop=True, pin=True)
    assert [row.level_at(begin + offset) for offset in (0.0, 0.99, 1.0, 2.5)] == [90.0, 90.0, 80.0, 70.0]
    assert row.level_at(begin + 3.0) == 0.0 and row.level_at(begin - 0.1) == 0.0
    assert schedule.CoreSchedule.from_json(row.to_json()) == row


def test_unreadable_pictures_and_unknown_glyphs_are_refused(tmp_path: Path) -> None:
    not_a_picture = tmp_path / "notes.png"
    not_a_picture.write_text("just text")
    with pytest.raises(render.PictureError, match="cannot read image"):
        render.load_image(not_a_picture)
    with pytest.raises(render.PictureError, match="cannot read image"):
        render.load_image(tmp_path / "missing.png")
    with pytest.raises(render.PictureError, match="no glyph for '€'"):
        render.text_image("5 €")
