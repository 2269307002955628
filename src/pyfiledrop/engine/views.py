"""The named tree: every finished upload readable in ``{storage}/files/`` under its own name and folders
(``files/album/one/b.txt``; through a drop link, ``files/<the link's label>/…``), as a hard link to the one stored
copy — so a deduplicated upload has its name too, and the tree costs no space.

The stored copies (``{storage}/{id}_{name}``, flat) stay where the engine keeps them; the tree is made beside them,
after the upload is recorded, by a task that takes finished uploads in batches (one thread hop and one transaction
per batch): the receiving path only puts the upload in a queue. Two uploads wanting one name: the later one is
``b (2).txt``. Deleting an upload removes its name (and folders left empty) before the delete is answered; and when
the stored copy itself bears the deleted upload's name while another upload still uses it, the copy is renamed after
that one first — so no file is ever left under the name of a deleted upload. At start-up, uploads with no name yet
(a crash, a store made before the tree) are named, and names of uploads that are gone are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.domain.model import BlobRef, ConcatKind, Upload
from pyfiledrop.domain.names import storage_name
from pyfiledrop.errors import PyfiledropError
from pyfiledrop.meta.views import ViewStore

log = logging.getLogger("pyfiledrop.views")

TREE = "files"
_BATCH = 256
_MAX_TWINS = 1000  # "name (2)" … "name (1000)": then the id tells them apart


class Views:
    def __init__(self, storage_dir: Path, store: ViewStore, blob_path: Callable[[BlobRef], Path | None],
                 label_of: Callable[[str], Awaitable[str | None]]) -> None:  # fmt: skip
        self.root = storage_dir / TREE
        self.store = store
        self._blob_path = blob_path
        self._label_of = label_of  # owner → the drop link's label (an awaitable), or None
        self._queue: asyncio.Queue[Upload] = asyncio.Queue()
        self._lock = asyncio.Lock()  # a batch and a removal never interleave
        self._dropped: set[UploadId] = set()
        self._task: asyncio.Task[None] | None = None

    # -- hooks the service calls ----------------------------------------------------------------------------------

    def completed(self, upload: Upload) -> None:
        """A finished upload (on the receiving path: only a queue put)."""
        if upload.concat is not ConcatKind.PARTIAL and upload.blob is not None:
            self._queue.put_nowait(upload)

    async def dropping(self, upload: Upload) -> None:
        """Before an upload's record goes: its name goes, and the stored copy stops bearing its name. A failure here
        is logged and does not stop the delete (start-up removes a name left behind)."""
        try:
            await self._drop_names(upload)
        except (OSError, sqlite3.Error) as exc:
            log.warning("could not remove the name of upload %s from %s: %s", upload.id, self.root, exc)

    async def _drop_names(self, upload: Upload) -> None:
        async with self._lock:
            self._dropped.add(upload.id)
            path = await self.store.path_of(upload.id)
            if path is not None:
                await asyncio.to_thread(_unlink_and_prune, self.root, path)
                await self.store.forget(upload.id)
            if upload.blob_key is not None and upload.blob_key.startswith(f"{upload.id}_"):
                await self._hand_over(upload, upload.blob_key)

    async def _hand_over(self, upload: Upload, key: str) -> None:
        successor = await self.store.successor(upload.id, key)
        if successor is None or upload.size is None:
            return  # the last upload of this copy: the delete removes the file itself
        new_key = f"{successor[0]}_{storage_name(successor[1])}"
        old_path, new_path = self._blob_path(BlobRef(key, upload.size)), self._blob_path(BlobRef(new_key, upload.size))
        if old_path is None or new_path is None:
            return
        # Link, record, unlink: a crash between leaves an extra name that start-up's orphan scan removes.
        await asyncio.to_thread(_link, old_path, new_path)
        await self.store.rekey(key, new_key)
        await asyncio.to_thread(old_path.unlink, missing_ok=True)

    # -- the task -------------------------------------------------------------------------------------------------

    async def start(self, uploads: Callable[[UploadId], Awaitable[Upload]], others_since: float | None = None) -> None:
        """Repair the tree after a crash, then name finished uploads as they come. ``others_since``: other replicas
        are live; an unnamed upload finished after that time is theirs to name (its completer has it queued), so
        this one leaves it alone rather than give it a second name."""
        await asyncio.to_thread(self.root.mkdir, exist_ok=True)
        for upload_id, path in await self.store.stale():
            await asyncio.to_thread(_unlink_and_prune, self.root, path)
            await self.store.forget(upload_id)
        every = await self.store.every()
        present = await asyncio.to_thread(lambda: [(self.root / path).exists() for _, path in every])
        for (upload_id, _), there in zip(every, present, strict=True):
            if not there:  # removed by hand (or lost): made again below
                await self.store.forget(upload_id)
        for upload_id in await self.store.unnamed():
            with contextlib.suppress(PyfiledropError):
                upload = await uploads(upload_id)
                if others_since is None or upload.updated_at < others_since:
                    self.completed(upload)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def settle(self) -> None:
        """Wait until every upload queued so far has its name (tests, shutdown)."""
        for _ in range(10_000):
            if self._queue.empty() and not self._lock.locked():
                return
            await asyncio.sleep(0.005)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                async with self._lock:
                    await self._name(batch)
            except Exception:
                log.exception("could not give %d finished uploads their names in %s", len(batch), self.root)

    async def _name(self, batch: Sequence[Upload]) -> None:
        wanted: list[tuple[Upload, Path, str]] = []
        batch = list({upload.id: upload for upload in batch}.values())
        named = await self.store.named([upload.id for upload in batch])  # queued twice (start-up and recovery)
        for upload in batch:
            if upload.id in named or upload.id in self._dropped or upload.blob is None:
                continue
            source = self._blob_path(upload.blob)
            if source is not None:
                wanted.append((upload, source, await self._wanted_path(upload)))
        if len(self._dropped) > 10_000:
            self._dropped.clear()  # ids of deleted uploads: only those still queued matter, and batches are quick
        if not wanted:
            return
        taken = await self.store.taken([path for _, _, path in wanted])
        made = await asyncio.to_thread(_link_all, self.root, [(u.id, source, path) for u, source, path in wanted],
                                       taken)  # fmt: skip
        await self.store.record(made)

    async def _wanted_path(self, upload: Upload) -> str:
        parts = [storage_name(part) for part in upload.filename.split("/")]
        label = await self._label_of(upload.owner)
        if label:
            parts.insert(0, storage_name(label))
        return "/".join(parts)


def _link_all(root: Path, wanted: Sequence[tuple[UploadId, Path, str]], taken: set[str]) -> list[tuple[UploadId, str]]:
    made = []
    for upload_id, source, path in wanted:
        try:
            made.append((upload_id, _link_free(root, source, path, taken)))
        except OSError as exc:
            log.warning("no name in %s for upload %s (%s): %s", root, upload_id, path, exc)
    return made


def _link_free(root: Path, source: Path, path: str, taken: set[str]) -> str:
    """Hard-link ``source`` at ``path`` below ``root``, or at 'name (2)', 'name (3)', … if that is taken."""
    folder, _, name = path.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, dot, ext = name, "", ""
    (root / folder).mkdir(parents=True, exist_ok=True)
    for number in range(1, _MAX_TWINS + 1):
        candidate_name = name if number == 1 else f"{stem} ({number}){dot}{ext}"
        candidate = f"{folder}/{candidate_name}" if folder else candidate_name
        if candidate in taken:
            continue
        try:
            os.link(source, root / candidate)
        except FileExistsError:
            continue
        taken.add(candidate)
        return candidate
    raise OSError(errno.EEXIST, f"{_MAX_TWINS} files are already named {name}")


def _link(old: Path, new: Path) -> None:
    with contextlib.suppress(FileExistsError):
        os.link(old, new)


def _unlink_and_prune(root: Path, path: str) -> None:
    """Remove the name, then the folders it leaves empty (up to the tree's root)."""
    target = root / path
    target.unlink(missing_ok=True)
    folder = target.parent
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return  # not empty
        folder = folder.parent
