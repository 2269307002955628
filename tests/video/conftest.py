"""Test clips, made once per run with PyAV (a keyframe every 2 s, 10 s long, tiny pictures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.video.samples import Recipe, make

RECIPES = {
    "h264.mp4": Recipe("mp4", "libx264", "aac", b_frames=2),
    "hevc.mp4": Recipe("mp4", "libx265", "aac", tag="hvc1"),
    "hevc.mkv": Recipe("mkv", "libx265", "libopus", chapters=((0, 3, "One"), (3, 6, "Two"), (6, 10, "Three"))),
    "vp9.webm": Recipe("webm", "libvpx-vp9", "libopus"),
    "av1.mkv": Recipe("mkv", "libsvtav1", "libopus"),
    "portrait.mp4": Recipe("mp4", "libx264", "aac", rotation=90),
}


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    return {name: make(folder / name, recipe) for name, recipe in RECIPES.items()}
