"""The background join of a tus final upload (engine/concat.py), cut off or failing at a chosen point: start-up joins
again, a failure leaves nothing half-made and gives the parts back."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest

from pyfiledrop.domain.model import ConcatKind, Upload, UploadState
from pyfiledrop.engine import concat
from pyfiledrop.errors import UploadGone
from tests.faults.crashkit import Content, check_storage
from tests.faults.enginekit import Engine, new, running
from tests.faults.test_crash_windows import contents, whole


@pytest.fixture(autouse=True)
def _joined_in_the_background(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every final upload here is answered before its join ends, as a large one is."""
    monkeypatch.setattr(concat, "INLINE_BYTES", 0)
    monkeypatch.setattr(concat, "ANSWER_WITHIN", 0.0)


async def _parts(e: Engine, pieces: list[Content]) -> list[str]:
    ids = []
    for piece in pieces:
        upload = await e.service.create(new(piece.index, len(piece.data), concat=ConcatKind.PARTIAL))
        await e.service.write(upload.id, whole(piece.data))
        ids.append(upload.id)
    return ids


def _hold(e: Engine, name: str) -> asyncio.Event:
    """Make the storage's or the service's ``name`` wait until the event is set (never, for a crash there)."""
    owner: Any = e.storage if name == "concat" else e.service
    original = getattr(owner, name)
    release = asyncio.Event()

    async def held(*args: Any, **kwargs: Any) -> Any:
        await release.wait()
        return await original(*args, **kwargs)

    setattr(owner, name, held)
    return release


@pytest.mark.parametrize("where", ["concat", "complete"])
def test_a_join_cut_off_is_joined_again_at_the_next_start(tmp_path: Path, where: str) -> None:
    """``concat``: cut off while the bytes are copied (the final is receiving, nothing recorded); ``complete``: cut off
    after every byte was recorded, before the completion (start-up completes it, then drops the parts)."""
    part1, part2, part3 = contents(70_000, 4096, 50_001)
    joined = part1.data + part2.data + part3.data
    final = Content(3, joined, hashlib.sha256(joined).hexdigest())

    async def cut_off() -> tuple[str, list[str]]:
        async with running(tmp_path) as e:
            ids = await _parts(e, [part1, part2, part3])
            _hold(e, where)
            made = await e.service.concatenate(new(3, None, concat=ConcatKind.FINAL), ids)  # type: ignore[arg-type]
            assert made.state is UploadState.RECEIVING  # answered while the join waits
            await asyncio.sleep(0.05)
            for part_id in ids:
                assert (await e.meta.get(part_id)).state is UploadState.COMPLETING  # claimed: no second final
            return made.id, ids  # the "process" dies here: its tasks are cancelled

    async def restart(final_id: str, ids: list[str]) -> Upload:
        async with running(tmp_path) as e:
            done = await e.service.status(final_id)  # type: ignore[arg-type]  # waits for the join
            for part_id in ids:
                assert (await e.meta.get(part_id)).state is UploadState.TERMINATED  # used up
            return done

    final_id, ids = asyncio.run(cut_off())
    done = asyncio.run(restart(final_id, ids))
    assert done.state is UploadState.COMPLETE
    assert done.sha256 == final.sha256
    assert check_storage(tmp_path, [part1, part2, part3, final]) == []


def test_a_join_that_fails_removes_the_final_upload_and_gives_the_parts_back(tmp_path: Path) -> None:
    part1, part2 = contents(30_000, 20_000)

    async def fail_then_retry() -> None:
        async with running(tmp_path) as e:
            ids = await _parts(e, [part1, part2])
            original = e.storage.concat

            async def failing(*args: Any, **kwargs: Any) -> bool:
                raise OSError(5, "Input/output error")

            e.storage.concat = failing  # type: ignore[method-assign]
            made = await e.service.concatenate(new(2, None, concat=ConcatKind.FINAL), ids)  # type: ignore[arg-type]
            with pytest.raises(UploadGone):
                await e.service.status(made.id)  # waits for the join, which failed: the final upload is gone
            assert not (e.storage.chunks_dir / f"{made.id}.part").exists()
            for part_id in ids:
                assert (await e.meta.get(part_id)).state is UploadState.COMPLETE  # usable again
            e.storage.concat = original  # type: ignore[method-assign]
            again = await e.service.concatenate(new(2, None, concat=ConcatKind.FINAL), ids)  # type: ignore[arg-type]
            done = await e.service.status(again.id)
            assert done.sha256 == hashlib.sha256(part1.data + part2.data).hexdigest()

    asyncio.run(fail_then_retry())
