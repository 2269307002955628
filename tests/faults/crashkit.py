"""kill -9 a real server at random moments of a mixed upload workload, restart it, and check what must still hold.

Shared by ``tests/faults/test_crash_loop.py`` (a CI-sized run) and ``benchmarks/soak/crash_loop.py`` (as many kills
as you like).

The workload: job threads, each uploading files one after another over tus (streamed PATCHes of random length, some
with Upload-Checksum, some without Content-Length, some creation-with-upload), Dropzone (chunks in random order, two
at a time, some sent twice) or PUT. The files come from a small pool of contents, so most are deduplicated against
another upload. Some finished uploads are given a 0.3 s expiry (the server sweeps every 0.3 s here) or deleted, so
kills land in completions, deduplications, sweeps and deletes as well as in chunk writes. Every answer a client got
goes into a :class:`Ledger`: the byte ranges acknowledged, the uploads reported complete and their sha256.

After each kill, with the clients parked, the server is started again on the same storage and :func:`check` reads
the SQLite file (read-only), the storage folder and the API. What must hold after every restart:

* every range a client was told was received is still recorded, and every recorded range holds the right bytes;
* every upload reported complete is complete, with the sha256 of its content, and its file hashes to that sha256;
* no upload is left ``completing`` (start-up finishes them);
* every ``blobs`` row has its file, with the right size, and ``refs`` equal to the complete uploads that use it;
* no finished file in the folder without a ``blobs`` row (orphan), no ``.part`` file without an unfinished upload;
* ``POST /api/admin/verify`` finds no problem.

At the end the clients finish every upload they have going, and every kept file is downloaded and compared.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import random
import re
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pyfiledrop.domain.ranges import RangeSet
from tests.conftest import ADMIN_TOKEN, ServerProcess

LAUNCHER = Path(__file__).with_name("serve_fast_sweep.py")
TUS = {"tus-resumable": "1.0.0"}
OCTET = "application/offset+octet-stream"
FILENAME = re.compile(r"c(\d+)-")  # every file the workload sends is named c<content>-<job>-<round>.bin
BLOB_NAME = re.compile(r"[A-Za-z0-9_-]{24}_.+")
PIECE = 64 * 1024
EXPIRES_IN = 0.3  # seconds: the expiry given to the uploads that are to be swept
SWEEP_INTERVAL = 0.3
SERVER_ARGS = ["--expire-after", "1h", "--timeout", "5000", "--max-size", "64"]


# -- the server ---------------------------------------------------------------------------------------------------


@dataclass
class SweepingServer(ServerProcess):
    """The shipped CLI on 127.0.0.1, with the expiry sweep every ``sweep_interval`` seconds."""

    sweep_interval: float = SWEEP_INTERVAL

    def launcher(self) -> list[str]:
        return [sys.executable, str(LAUNCHER), str(self.sweep_interval)]


# -- contents and the ledger --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Content:
    index: int
    data: bytes
    sha256: str


def make_contents(rng: random.Random, sizes: list[int]) -> list[Content]:
    contents = []
    for index, size in enumerate(sizes):
        data = rng.randbytes(size)
        contents.append(Content(index, data, hashlib.sha256(data).hexdigest()))
    return contents


def content_of(filename: str, contents: list[Content]) -> Content | None:
    match = FILENAME.match(filename)
    if match is None or int(match.group(1)) >= len(contents):
        return None
    return contents[int(match.group(1))]


@dataclass
class Tracked:
    """One upload as its client knows it: only what the server said with a 2xx."""

    id: str
    content: int
    protocol: str
    acked: RangeSet = field(default_factory=RangeSet)
    sha256: str | None = None  # reported complete with this sha256
    may_vanish: bool = False  # a delete or a short expiry was asked for


class Ledger:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.uploads: dict[str, Tracked] = {}
        self.problems: list[str] = []
        self.counts: dict[str, int] = {}

    def track(self, upload_id: str, content: int, protocol: str) -> Tracked:
        with self.lock:
            return self.uploads.setdefault(upload_id, Tracked(upload_id, content, protocol))

    def ack(self, upload_id: str, start: int, end: int) -> None:
        with self.lock:
            tracked = self.uploads[upload_id]
            tracked.acked = tracked.acked.add(start, end)

    def complete(self, upload_id: str, sha256: str) -> None:
        with self.lock:
            self.uploads[upload_id].sha256 = sha256
            self.counts["completed"] = self.counts.get("completed", 0) + 1

    def may_vanish(self, upload_id: str) -> None:
        with self.lock:
            self.uploads[upload_id].may_vanish = True

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + n

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)

    def snapshot(self) -> list[Tracked]:
        with self.lock:
            return [
                Tracked(t.id, t.content, t.protocol, t.acked, t.sha256, t.may_vanish) for t in self.uploads.values()
            ]


# -- parking the clients while the server is down -------------------------------------------------------------------


class Gate:
    """Clients pass it before every request; closed, it parks them, so the checks see a still ledger."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open = True
        self._parked = 0
        self.stopped = False

    def passage(self) -> bool:
        """Wait while closed; False once the workload is stopped."""
        with self._cond:
            if not self._open and not self.stopped:
                self._parked += 1
                self._cond.notify_all()
                while not self._open and not self.stopped:
                    self._cond.wait(0.5)
                self._parked -= 1
            return not self.stopped

    def close(self) -> None:
        with self._cond:
            self._open = False

    def open(self) -> None:
        with self._cond:
            self._open = True
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._cond.notify_all()

    def wait_parked(self, alive: Callable[[], int], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while time.monotonic() < deadline:
                if self._parked >= alive():
                    return True
                self._cond.wait(0.05)
        return False


# -- the clients ----------------------------------------------------------------------------------------------------


class Job(threading.Thread):
    """Uploads one file after another until told to finish; survives any number of server deaths."""

    protocol = ""

    def __init__(self, name: str, work: Workload, seed: int) -> None:
        super().__init__(name=name, daemon=True)
        self.work = work
        self.rng = random.Random(seed)
        self.round = 0
        self.content = work.contents[0]
        self.upload_id: str | None = None
        self.last = ""  # the last answer or error, for the report when a job hangs
        self.http = httpx.Client(base_url=work.url, timeout=15, headers={"x-pyfiledrop-token": work.token})
        self.new_upload()

    @property
    def filename(self) -> str:
        return f"c{self.content.index}-{self.name}-r{self.round}.bin"

    def new_upload(self) -> None:
        self.content = self.rng.choice(self.work.contents)
        self.upload_id = None

    def run(self) -> None:
        try:
            while self.work.gate.passage():
                if self.work.finishing.is_set() and self.upload_id is None and self.round > 0:
                    return
                try:
                    if self.step():
                        self.after_complete()
                except (httpx.HTTPError, OSError) as exc:
                    self.last = repr(exc)
                    self.work.ledger.count("requests cut off")
                    time.sleep(0.02)
        except Exception as exc:  # a bug in the client or the server's answers: report it, stop this job
            self.work.ledger.problem(f"{self.name} crashed: {exc!r}")
        finally:
            self.http.close()

    def step(self) -> bool:
        """One request or two; True when the current upload was reported complete."""
        raise NotImplementedError

    def stream(self, data: bytes) -> Iterator[bytes]:
        """The body in 64 KiB pieces, at most ~32 MB/s: long enough for a kill to land inside it."""
        for i in range(0, len(data), PIECE):
            yield data[i : i + PIECE]
            time.sleep(0.002)

    def expect(self, response: httpx.Response, *statuses: int) -> bool:
        self.last = f"{response.request.method} {response.request.url.path} → {response.status_code}"
        if response.status_code in statuses:
            return True
        if response.status_code in (409, 423):  # offset moved under us / old request still holds it: retry
            return False
        self.work.ledger.problem(
            f"{self.name} {response.request.method} {response.request.url.path} → {response.status_code} "
            f"{response.text[:200]!r}"
        )
        return False

    def reported_complete(self, upload_id: str, sha256: str | None) -> None:
        if sha256 != self.content.sha256:
            self.work.ledger.problem(
                f"{upload_id} ({self.filename}) reported sha256 {sha256}, not {self.content.sha256}"
            )
        self.work.ledger.complete(upload_id, sha256 or "")

    def after_complete(self) -> None:
        """Keep the file, or have it deleted or swept, then start the next one."""
        upload_id = self.upload_id
        assert upload_id is not None
        self.round += 1
        self.new_upload()
        if self.work.finishing.is_set():
            return
        fate = self.rng.random()
        if fate < 0.35:
            self.work.ledger.may_vanish(upload_id)  # before asking: the answer may be lost in a kill
            with contextlib.suppress(httpx.HTTPError):
                response = self.http.patch(f"/api/uploads/{upload_id}", json={"expires_in": EXPIRES_IN})
                if self.expect(response, 200):
                    self.work.ledger.count("given a short expiry")
        elif fate < 0.45:
            self.work.ledger.may_vanish(upload_id)
            with contextlib.suppress(httpx.HTTPError):
                if self.expect(self.http.delete(f"/api/uploads/{upload_id}"), 204):
                    self.work.ledger.count("deleted")
        time.sleep(self.rng.uniform(0, 0.1))


class TusJob(Job):
    protocol = "tus"

    def step(self) -> bool:
        data = self.content.data
        if self.upload_id is None:
            return self.create(data)
        head = self.http.head(f"/files/{self.upload_id}", headers=TUS)
        if not self.expect(head, 200):
            if head.status_code in (404, 410):  # reported above; go on with another file
                self.new_upload()
            return False
        offset = int(head.headers["upload-offset"])
        self.work.ledger.ack(self.upload_id, 0, offset)
        if offset == len(data):
            return self.fetch_complete()
        length = self.rng.choice([PIECE, 512 * 1024, 2 << 20, len(data)])
        piece = data[offset : offset + length]
        headers = {**TUS, "content-type": OCTET, "upload-offset": str(offset)}
        if self.rng.random() < 0.2:
            headers["upload-checksum"] = "sha1 " + base64.b64encode(hashlib.sha1(piece).digest()).decode()
        if self.rng.random() < 0.75:
            headers["content-length"] = str(len(piece))  # otherwise chunked transfer encoding
        response = self.http.patch(f"/files/{self.upload_id}", headers=headers, content=self.stream(piece))
        if not self.expect(response, 204):
            return False
        self.work.ledger.ack(self.upload_id, 0, int(response.headers["upload-offset"]))
        return int(response.headers["upload-offset"]) == len(data) and self.fetch_complete()

    def create(self, data: bytes) -> bool:
        name = base64.b64encode(self.filename.encode()).decode()
        headers = {**TUS, "upload-length": str(len(data)), "upload-metadata": f"filename {name}"}
        first = b""
        if self.rng.random() < 0.3:  # creation-with-upload
            first = data[: self.rng.choice([PIECE, 300_000])]
            headers |= {"content-type": OCTET, "content-length": str(len(first))}
        response = self.http.post("/files/", headers=headers, content=first)
        if not self.expect(response, 201):
            return False
        self.upload_id = response.headers["x-upload-id"]
        self.work.ledger.track(self.upload_id, self.content.index, self.protocol)
        self.work.ledger.ack(self.upload_id, 0, int(response.headers.get("upload-offset", "0")))
        return len(data) == 0 and self.fetch_complete()

    def fetch_complete(self) -> bool:
        assert self.upload_id is not None
        status = self.http.get(f"/api/uploads/{self.upload_id}")
        if not self.expect(status, 200):
            return False
        if status.json()["state"] == "receiving":  # HEAD said every byte is there: a tus client is done here
            self.work.ledger.problem(f"{self.upload_id} ({self.filename}) has every byte (HEAD) but stays receiving")
            self.new_upload()
            return False
        if status.json()["state"] != "complete":
            return False
        self.reported_complete(self.upload_id, status.json()["sha256"])
        return True


class DropzoneJob(Job):
    protocol = "dropzone"

    def __init__(self, name: str, work: Workload, seed: int) -> None:
        self.pool = ThreadPoolExecutor(2, thread_name_prefix=name)
        super().__init__(name, work, seed)

    def new_upload(self) -> None:
        super().new_upload()
        self.chunk_size = self.rng.choice([256 * 1024, 512 * 1024, 1 << 20])
        self.dzuuid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.acked_chunks: set[int] = set()

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.pool.shutdown(wait=True)

    def step(self) -> bool:
        data = self.content.data
        count = max(-(-len(data) // self.chunk_size), 1)
        pending = [i for i in range(count) if i not in self.acked_chunks]
        self.rng.shuffle(pending)
        picks = pending[:2]
        if self.acked_chunks and (not picks or self.rng.random() < 0.15):
            picks.append(self.rng.choice(sorted(self.acked_chunks)))  # a retry of a chunk that was answered
        results = list(self.pool.map(self.send, picks))
        return any(results)

    def send(self, index: int) -> bool:
        data, size = self.content.data, self.chunk_size
        offset = index * size
        count = max(-(-len(data) // size), 1)
        fields = {
            "dzuuid": self.dzuuid, "dzchunkindex": str(index), "dztotalfilesize": str(len(data)),
            "dzchunksize": str(size), "dztotalchunkcount": str(count), "dzchunkbyteoffset": str(offset),
        }  # fmt: skip
        files = {"file": (self.filename, data[offset : offset + size], "application/octet-stream")}
        response = self.http.post("/upload", data=fields, files=files)
        if not self.expect(response, 200):
            return False
        body = response.json()
        upload_id = body["id"]
        self.upload_id = upload_id
        self.work.ledger.track(upload_id, self.content.index, self.protocol)
        self.work.ledger.ack(upload_id, offset, min(offset + size, len(data)))
        for start, end in body["received"]:
            self.work.ledger.ack(upload_id, start, end)
        self.acked_chunks.add(index)
        if body["state"] == "complete":
            self.reported_complete(upload_id, body["sha256"])
            return True
        return False


class PutJob(Job):
    protocol = "put"

    def step(self) -> bool:
        data = self.content.data
        headers = {"accept": "application/json", "content-type": "application/octet-stream"}
        if self.rng.random() < 0.8:
            headers["content-length"] = str(len(data))
        response = self.http.put(f"/{self.filename}", headers=headers, content=self.stream(data))
        if not self.expect(response, 201):
            return False
        body = response.json()
        self.upload_id = body["id"]
        self.work.ledger.track(body["id"], self.content.index, self.protocol)
        self.work.ledger.ack(body["id"], 0, len(data))
        if body["state"] != "complete":
            self.work.ledger.problem(f"PUT {self.filename} answered 201 but the upload is {body['state']}")
            return False
        self.reported_complete(body["id"], body["sha256"])
        return True


JOB_KINDS: tuple[type[Job], ...] = (TusJob, DropzoneJob, PutJob)


class Workload:
    def __init__(self, url: str, contents: list[Content], jobs: int, seed: int) -> None:
        self.url = url
        self.contents = contents
        self.ledger = Ledger()
        self.gate = Gate()
        self.finishing = threading.Event()
        self.token = httpx.get(f"{url}/api/session", timeout=10).json()["token"]
        self.jobs = [JOB_KINDS[i % len(JOB_KINDS)](f"j{i}", self, seed * 1000 + i) for i in range(jobs)]

    def start(self) -> None:
        for job in self.jobs:
            job.start()

    def alive(self) -> int:
        return sum(job.is_alive() for job in self.jobs)

    def finish(self, timeout: float) -> list[str]:
        """Let every job complete the upload it has going, then stop; the jobs that did not, and where they hang."""
        self.finishing.set()
        self.gate.open()
        deadline = time.monotonic() + timeout
        for job in self.jobs:
            job.join(max(deadline - time.monotonic(), 0.1))
        hung = [f"{j.name} ({j.protocol}) did not finish {j.upload_id} ({j.filename}); last: {j.last}"
                for j in self.jobs if j.is_alive()]  # fmt: skip
        self.gate.stop()
        for job in self.jobs:
            job.join(5)
        return hung


# -- the checks -----------------------------------------------------------------------------------------------------


@dataclass
class Row:
    id: str
    filename: str
    state: str
    received: RangeSet
    size: int | None
    sha256: str | None
    blob_key: str | None
    concat: str
    expires_at: float | None


def read_database(storage: Path) -> tuple[dict[str, Row], dict[str, tuple[str, int, int]]]:
    """(uploads by id, blobs by key → (sha256, size, refs)), read-only, beside the running server."""
    db = sqlite3.connect(f"file:{storage / '.pyfiledrop.sqlite3'}?mode=ro", uri=True, timeout=30)
    try:
        rows = db.execute(
            "SELECT id, filename, state, received, size, sha256, blob_key, concat, expires_at FROM uploads"
        ).fetchall()
        blobs = db.execute("SELECT key, sha256, size, refs FROM blobs").fetchall()
    finally:
        db.close()
    uploads = {r[0]: Row(r[0], r[1], r[2], RangeSet.from_text(r[3]), *r[4:]) for r in rows}
    return uploads, {key: (sha, size, refs) for key, sha, size, refs in blobs}


_hash_cache: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _hash_cache:
        _hash_cache[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _hash_cache[key]


def wait_quiet(storage: Path, timeout: float = 10.0) -> None:
    """Until the sweep has dropped every expired upload (none of the kept ones expires during a run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        uploads, _ = read_database(storage)
        now = time.time()
        if not any(r.state == "complete" and r.expires_at is not None and r.expires_at < now for r in uploads.values()):
            time.sleep(2 * SWEEP_INTERVAL)  # a sweep that started may still be deleting files
            return
        time.sleep(0.05)


def check_storage(storage: Path, contents: list[Content]) -> list[str]:
    """The records, the blobs and the folder agree, and hold the right bytes (no server needed)."""
    uploads, blobs = read_database(storage)
    problems = _check_rows(storage, uploads, blobs, contents)
    problems += _check_blobs(storage, uploads, blobs)
    return problems + _check_folder(storage, uploads, blobs)


def check(server: ServerProcess, ledger: Ledger, contents: list[Content]) -> list[str]:
    """Everything that must hold once the server has started again; returns the problems found."""
    wait_quiet(server.storage)
    problems = check_storage(server.storage, contents)
    uploads, _ = read_database(server.storage)
    problems += _check_ledger(server, ledger, uploads)
    verify = httpx.post(f"{server.url}/api/admin/verify", headers={"x-pyfiledrop-token": ADMIN_TOKEN}, timeout=60)
    if verify.status_code != 200 or verify.json()["problems"]:
        problems.append(f"/api/admin/verify: {verify.status_code} {verify.text[:500]}")
    return problems


def _check_rows(
    storage: Path, uploads: dict[str, Row], blobs: dict[str, tuple[str, int, int]], contents: list[Content]
) -> list[str]:
    problems = []
    for row in uploads.values():
        content = content_of(row.filename, contents)
        if row.state == "completing":
            problems.append(f"{row.id} is still completing after start-up")
        if content is None or row.state == "terminated":
            continue
        if row.state == "receiving" and row.size is not None and row.received.is_complete(row.size):
            problems.append(f"{row.id} ({row.filename}) has all {row.size} bytes but was never completed")
        if row.state == "receiving" and row.received.total:
            part = storage / ".partial" / f"{row.id}.part"
            if not part.exists():
                problems.append(f"{row.id} ({row.filename}) records {row.received.to_text()} but has no .part file")
                continue
            with part.open("rb") as handle:
                for start, end in row.received:
                    handle.seek(start)
                    if handle.read(end - start) != content.data[start:end]:
                        problems.append(f"{row.id} ({row.filename}) bytes {start}-{end} on disk are not the upload's")
        if row.state == "complete":
            if row.sha256 != content.sha256:
                problems.append(f"{row.id} ({row.filename}) complete with sha256 {row.sha256}, not {content.sha256}")
            if row.blob_key not in blobs:
                problems.append(f"{row.id} ({row.filename}) complete, but its blob {row.blob_key} has no row")
            elif not (storage / row.blob_key).is_file():
                problems.append(f"{row.id} ({row.filename}) complete, but its file {row.blob_key} is missing")
            elif file_sha256(storage / row.blob_key) != content.sha256:
                problems.append(f"{row.id} ({row.filename}) file {row.blob_key} does not hash to its sha256")
    return problems


def _check_blobs(storage: Path, uploads: dict[str, Row], blobs: dict[str, tuple[str, int, int]]) -> list[str]:
    problems = []
    users: dict[str, int] = {}
    for row in uploads.values():
        if row.state == "complete" and row.blob_key is not None:
            users[row.blob_key] = users.get(row.blob_key, 0) + 1
    for key, (sha256, size, refs) in blobs.items():
        path = storage / key
        if refs != users.get(key, 0):
            problems.append(f"blob {key}: refs {refs}, but {users.get(key, 0)} complete uploads use it")
        if not path.is_file():
            problems.append(f"blob {key}: dangling, the file is missing")
        elif path.stat().st_size != size:
            problems.append(f"blob {key}: {path.stat().st_size} bytes on disk, {size} recorded")
        elif file_sha256(path) != sha256:
            problems.append(f"blob {key}: the file does not hash to the recorded sha256")
    return problems


def _check_folder(storage: Path, uploads: dict[str, Row], blobs: dict[str, tuple[str, int, int]]) -> list[str]:
    problems = []
    for path in storage.iterdir():
        if BLOB_NAME.fullmatch(path.name) and path.is_file() and path.name not in blobs:
            problems.append(f"orphan file {path.name}: no blobs row")
    keep_parts = {
        r.id for r in uploads.values() if r.state == "receiving" or (r.concat == "partial" and r.state == "complete")
    }
    for part in (storage / ".partial").glob("*.part"):
        if part.stem not in keep_parts:
            state = uploads[part.stem].state if part.stem in uploads else "no record"
            problems.append(f"orphan partial file {part.name} ({state})")
    return problems


def _check_ledger(server: ServerProcess, ledger: Ledger, uploads: dict[str, Row]) -> list[str]:
    problems = []
    with httpx.Client(base_url=server.url, timeout=30, headers={"x-pyfiledrop-token": ADMIN_TOKEN}) as http:
        for tracked in ledger.snapshot():
            row = uploads.get(tracked.id)
            if row is None:
                problems.append(f"{tracked.id} ({tracked.protocol}) was acknowledged but has no record")
                continue
            if row.state == "terminated":
                if not tracked.may_vanish:
                    problems.append(f"{tracked.id} ({tracked.protocol}) is gone, but nobody deleted it")
                continue
            status = http.get(f"/api/uploads/{tracked.id}")
            if status.status_code != 200:
                problems.append(f"GET /api/uploads/{tracked.id} → {status.status_code} {status.text[:200]}")
                continue
            seen = status.json()
            received = RangeSet(tuple((s, e) for s, e in seen["received"]))
            if seen["state"] != "complete" and received.union(tracked.acked) != received:
                problems.append(
                    f"{tracked.id} ({tracked.protocol}) lost acknowledged bytes: acked {tracked.acked.to_text()}, "
                    f"has {received.to_text()}"
                )
            if tracked.sha256 is not None and (seen["state"] != "complete" or seen["sha256"] != tracked.sha256):
                problems.append(f"{tracked.id} ({tracked.protocol}) was reported complete, now {seen['state']}")
    return problems


def check_downloads(server: ServerProcess, ledger: Ledger, contents: list[Content], limit: int) -> list[str]:
    """Download (up to ``limit`` of) the kept files and compare them with what was sent."""
    problems = []
    kept = [t for t in ledger.snapshot() if t.sha256 is not None and not t.may_vanish]
    with httpx.Client(base_url=server.url, timeout=60, headers={"x-pyfiledrop-token": ADMIN_TOKEN}) as http:
        for tracked in kept[:limit]:
            response = http.get(f"/download/{tracked.id}")
            if response.status_code != 200 or response.content != contents[tracked.content].data:
                problems.append(f"download of {tracked.id}: {response.status_code}, bytes differ from what was sent")
    return problems


# -- the loop -------------------------------------------------------------------------------------------------------


@dataclass
class CrashReport:
    seed: int
    kills: int = 0  # kill -9 and restart, with every check passing afterwards
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    recoveries: list[str] = field(default_factory=list)  # the server's "recovered after a crash" lines

    def summary(self) -> str:
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items()))
        return f"seed {self.seed}: kills survived: {self.kills} in {self.seconds:.0f} s ({counts})"


def default_sizes(rng: random.Random, count: int, largest: int) -> list[int]:
    """A pool of contents: empty, one byte, and random sizes up to ``largest``."""
    return [0, 1, *(rng.randint(1, largest) for _ in range(count - 2))]


def run_crash_loop(
    storage: Path,
    *,
    kills: int,
    seconds: float,
    seed: int | None = None,
    jobs: int = 9,
    contents: int = 6,
    largest: int = 3 << 20,
    extra_args: list[str] | None = None,
    log: Callable[[str], None] = print,
) -> CrashReport:
    """Up to ``kills`` kill -9 / restart cycles within about ``seconds``; stops at the first failed check."""
    seed = random.SystemRandom().randrange(1 << 32) if seed is None else seed
    rng = random.Random(seed)
    report = CrashReport(seed)
    log(f"crash loop: seed {seed} (run again with this seed to replay the same workload and kill times)")
    pool = make_contents(rng, default_sizes(rng, contents, largest))
    server = SweepingServer(storage, [*SERVER_ARGS, *(extra_args or [])]).start()
    started = time.monotonic()
    work = Workload(server.url, pool, jobs, seed)
    work.start()
    try:
        for n in range(1, kills + 1):
            if time.monotonic() - started > seconds:
                break
            time.sleep(rng.uniform(0.05, 1.2))
            work.gate.close()
            server.kill()
            if not work.gate.wait_parked(work.alive, 20):
                report.problems.append(f"kill {n}: the clients did not stop within 20 s")
                break
            server.start()
            problems = check(server, work.ledger, pool) + work.ledger.problems
            if problems:
                report.problems += [f"after kill {n}: {p}" for p in problems]
                break
            report.kills = n
            work.gate.open()
        if not report.problems:
            report.problems += work.finish(timeout=30)
            report.problems += check(server, work.ledger, pool) + work.ledger.problems
            report.problems += check_downloads(server, work.ledger, pool, limit=40)
    finally:
        work.gate.stop()
        report.seconds = time.monotonic() - started
        report.counts = dict(work.ledger.counts)
        server.kill()
        report.recoveries = [line for line in server.log().splitlines() if "recovered after a crash" in line]
        report.counts["restarts that recovered something"] = len(report.recoveries)
    log(report.summary())
    for problem in report.problems[:50]:
        log(f"  PROBLEM {problem}")
    return report
