"""`pyfiledrop upload --share [--share-expires]` prints a share link last; `-r DIR` keeps the folder's paths."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, ServerProcess


@pytest.fixture
def server(make_server: type[ServerProcess], tmp_path: Path) -> ServerProcess:
    return make_server(tmp_path / "s").start()


def _upload(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFILEDROP_")}
    env["PYFILEDROP_STATE"] = str(tmp_path / "state.json")
    return subprocess.run([sys.executable, "-m", "pyfiledrop", "upload", "-q", *args], capture_output=True, env=env,
                          timeout=120)  # fmt: skip


def test_share_prints_a_link_that_works_and_expires(server: ServerProcess, tmp_path: Path) -> None:
    source = tmp_path / "movie.bin"
    source.write_bytes(os.urandom(120_000))
    done = _upload(tmp_path, "--url", server.url, "--share", "--share-expires", "2s", str(source))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 2 and "/s/" in lines[-1]
    assert httpx.get(lines[-1]).content == source.read_bytes()
    time.sleep(2.2)
    assert httpx.get(lines[-1]).status_code == 410


def test_recursive_keeps_paths_and_shares_the_folder_as_one_link(server: ServerProcess, tmp_path: Path) -> None:
    top = tmp_path / "holiday"
    (top / "day1").mkdir(parents=True)
    (top / "day2").mkdir()
    files = {"day1/b.txt": b"first b", "day2/b.txt": b"second b", "notes.md": b"# notes"}
    for name, data in files.items():
        (top / name).write_bytes(data)
    done = _upload(tmp_path, "--url", server.url, "-r", "--share", "--json", str(top))
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert sorted(r["name"] for r in records[:-1]) == sorted(f"holiday/{name}" for name in files)
    share = records[-1]
    assert share["files"] == 3
    zipped = httpx.get(share["share_url"] + "/zip")
    assert "holiday.zip" in zipped.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(zipped.content))
    assert {name: archive.read(name) for name in archive.namelist()} == {f"holiday/{k}": v for k, v in files.items()}
    mine = httpx.get(f"{server.url}/api/uploads?all=1", headers={"x-pyfiledrop-token": ADMIN_TOKEN}).json()
    assert sorted(u["filename"] for u in mine["uploads"]) == sorted(f"holiday/{name}" for name in files)


def test_flags_are_checked_before_anything_is_sent(server: ServerProcess, tmp_path: Path) -> None:
    folder = tmp_path / "dir"
    folder.mkdir()
    without_r = _upload(tmp_path, "--url", server.url, str(folder))
    assert without_r.returncode == 2 and b"-r" in without_r.stderr
    bad = _upload(tmp_path, "--url", server.url, "--share", "--share-expires", "soon", str(folder))
    assert bad.returncode == 2 and b"--share-expires" in bad.stderr
    alone = _upload(tmp_path, "--url", server.url, "--share-expires", "1d", str(folder))
    assert alone.returncode == 2 and b"--share" in alone.stderr


def test_share_through_a_drop_link_explains_why_not(server: ServerProcess, tmp_path: Path) -> None:
    link = httpx.post(f"{server.url}/api/drops", json={"label": "inbox"},
                      headers={"x-pyfiledrop-token": ADMIN_TOKEN}).json()  # fmt: skip
    source = tmp_path / "x.txt"
    source.write_bytes(b"x")
    done = _upload(tmp_path, "--url", link["url"], "--share", str(source))
    assert done.returncode == 1 and b"drop" in done.stderr and b"uploaded" in done.stderr
