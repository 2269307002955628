"""Lossless video trim and rotate: packets are copied, never re-encoded (issue 17).

``media`` is the one module that knows FFmpeg (through PyAV, the optional ``video`` extra); ``ops`` cuts and turns
files on top of it, ``timecode`` reads the times people type, ``cli`` is ``pyfiledrop video …`` and ``jobs`` runs
the server's video jobs off the event loop.
"""

from __future__ import annotations

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
