"""``pyfiledrop upload -r DIR`` (folders, relative paths kept) and ``--share`` (a share link at the end)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyfiledrop.client.tus import DROP_HEADER, Session


class ShareError(Exception):
    """The files went up but no share link could be made; the message says why."""


def expand(paths: Sequence[str], recursive: bool) -> list[tuple[str, str | None]]:
    """(path, name to store it under) for every file; a folder with ``recursive`` gives each file below it, named
    by its path from the folder's parent ('photos/2024/a.jpg'), in a stable order. Symbolic links to folders are not
    followed (no loops); hidden files are sent like the others."""
    found: list[tuple[str, str | None]] = []
    for path in paths:
        if path == "-" or not Path(path).is_dir():
            found.append((path, None))
            continue
        if not recursive:
            raise IsADirectoryError(f"{path} is a folder: add -r to upload the files in it, keeping their paths")
        top = Path(path).resolve()
        for folder, subfolders, files in os.walk(top):
            subfolders.sort()
            for name in sorted(files):
                full = Path(folder) / name
                if full.is_file():
                    found.append((str(full), f"{top.name}/{full.relative_to(top).as_posix()}"))
    return found


def make_share(session: Session, upload_ids: Sequence[str], expires_in: float | None, label: str) -> dict[str, Any]:
    """One link: to the file itself when there is one file, else to a page of them all with a zip."""
    if DROP_HEADER in session.headers:
        raise ShareError("files sent through a drop link belong to the drop's owner: only they can share them")
    options: dict[str, Any] = {}
    if expires_in is not None:
        options["expires_in"] = expires_in
    if len(upload_ids) == 1:
        path = f"{session.base.path}/api/uploads/{upload_ids[0]}/shares"
    else:
        path, options["upload_ids"], options["label"] = f"{session.base.path}/api/shares", list(upload_ids), label
    client = session.client()
    try:
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "pyfiledrop-upload",
                   **session.headers}  # fmt: skip
        if session.token:
            headers["X-Pyfiledrop-Token"] = session.token
        response = client.conn.request("POST", path, headers, json.dumps(options).encode())
    finally:
        client.close()
    if response.status != 201:
        raise ShareError(f"{session.base_url}{path} answered HTTP {response.status}: {response.text()[:300]}")
    data: dict[str, Any] = json.loads(response.body)
    return data
