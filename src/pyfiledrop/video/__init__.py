"""Lossless video trim and rotate: packets are copied, never re-encoded (issue 17).

``media`` is the one module that knows FFmpeg (through PyAV, the optional ``video`` extra); ``ops`` cuts and turns
files on top of it, ``timecode`` reads the times people type, ``cli`` is ``pyfiledrop video …`` and ``jobs`` runs
the server's video jobs off the event loop.
"""

from __future__ import annotations

import argparse
from typing import Any

INSTALL_HINT = "video support needs PyAV: pip install 'pyfiledrop[video]'"


class VideoUnavailable(RuntimeError):
    """PyAV is not installed."""

    def __init__(self) -> None:
        super().__init__(INSTALL_HINT)


def available() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def add_commands(commands: Any) -> None:
    """Register ``pyfiledrop video …`` on the main parser's sub-commands (cli.py calls this)."""
    from pyfiledrop.video.cli import add_commands as add

    add(commands)


def run_command(namespace: argparse.Namespace) -> int:
    from pyfiledrop.video.cli import run

    return run(namespace)
