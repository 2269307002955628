"""A helper whose server is already gone ends quietly, whenever that happens (issue 21: a stop right after start)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def test_helper_started_by_a_server_that_already_left_exits_without_a_traceback(tmp_path: Path) -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.close()  # the server stopped before the helper could say READY
    memfd = os.memfd_create("slots")
    os.ftruncate(memfd, 4096)
    try:
        args = [str(theirs.fileno()), str(memfd), "4096", str(tmp_path), str(tmp_path), "0", "0", "1"]
        done = subprocess.run([sys.executable, "-m", "pyfiledrop.storage.intake_helper", *args],
                              pass_fds=(theirs.fileno(), memfd), capture_output=True, timeout=30)  # fmt: skip
    finally:
        theirs.close()
        os.close(memfd)
    assert done.stderr.decode() == ""
    assert done.returncode == 0
