"""Races between replicas, staged on purpose by sending to chosen replicas directly (nginx would pick at random):
two chunks of one upload at two replicas at once, a PATCH watched by HEADs elsewhere, a replica killed with
SIGKILL in the middle of an upload and started again."""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.interop.conftest import MiB, Source, check_stored
from tests.replicas.conftest import Cluster, check_no_dangling_multiparts

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

TUS = {"tus-resumable": "1.0.0"}
PATCH = {**TUS, "content-type": "application/offset+octet-stream"}


def _owner(url: str) -> dict[str, str]:
    return {"x-pyfiledrop-token": str(httpx.get(f"{url}/api/session", timeout=10).json()["token"])}


def _create(url: str, owner: dict[str, str], size: int, name: str) -> str:
    created = httpx.post(f"{url}/files/", headers={**TUS, **owner, "upload-length": str(size),
                                                   "upload-metadata": f"filename {_b64(name)}"})  # fmt: skip
    assert created.status_code == 201, created.text
    return str(created.headers["location"]).rsplit("/", 1)[-1]


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def _offset(url: str, upload_id: str) -> int:
    response = httpx.head(f"{url}/files/{upload_id}", headers=TUS, timeout=10)
    assert response.status_code == 200, response.status_code
    return int(response.headers["upload-offset"])


class GatedBody:
    """A request body that sends ``before`` bytes, then waits for ``go`` before the rest; counts what it sent."""

    def __init__(self, data: bytes, before: int) -> None:
        self.data, self.before = data, before
        self.sent = 0
        self.paused = threading.Event()
        self.go = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        step = 256 * 1024
        while self.sent < len(self.data):
            if self.sent >= self.before and not self.go.is_set():
                self.paused.set()
                if not self.go.wait(30):
                    raise TimeoutError("the test never let the body go on")
            piece = self.data[self.sent : self.sent + step]
            yield piece
            self.sent += len(piece)


def _logs(cluster: Cluster) -> str:
    """The replicas' logs (their last lines), for a failure's message."""
    return "\n".join(f"--- replica {r.port}:\n" + "\n".join(r.log().splitlines()[-15:]) for r in cluster.replicas)


def _patch_at(
    cluster: Cluster, upload_id: str, replicas: list[int], offsets: list[int], bodies: list[GatedBody]
) -> list[httpx.Response]:
    """Parallel-write PATCHes to the given replicas, each held half-way until all are in flight."""

    def send(index: int) -> httpx.Response:
        replica = cluster.replicas[replicas[index]]
        headers = {**PATCH, "upload-offset": str(offsets[index]), "content-length": str(len(bodies[index].data)),
                   "x-pyfiledrop-parallel-write": "1"}  # fmt: skip
        return httpx.patch(f"{replica.url}/files/{upload_id}", content=iter(bodies[index]), headers=headers,
                           timeout=60)  # fmt: skip

    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        sent = [pool.submit(send, index) for index in range(len(bodies))]
        for body in bodies:
            assert body.paused.wait(30)
        for body in bodies:
            body.go.set()
        return [future.result() for future in sent]


def test_two_chunks_of_one_upload_at_two_replicas_at_once(cluster: Cluster, make_source: Callable[..., Source]) -> None:
    """The two halves of one upload stream into replicas 1 and 2 at the same time (each half-way when the other
    starts): both are kept, the last one recorded completes the upload, the sha256 is right."""
    owner = _owner(cluster.url)
    source = make_source(16 * MiB, "halves.bin")
    data = source.path.read_bytes()
    half = len(data) // 2
    upload_id = _create(cluster.replicas[0].url, owner, len(data), "halves.bin")
    bodies = [GatedBody(data[:half], half // 2), GatedBody(data[half:], half // 2)]
    answers = _patch_at(cluster, upload_id, [1, 2], [0, half], bodies)
    assert [a.status_code for a in answers] == [204, 204], [a.text for a in answers]
    assert max(int(a.headers["upload-offset"]) for a in answers) == len(data)
    with httpx.Client(base_url=cluster.url, timeout=30) as client:
        check_stored(client, upload_id, source, owner["x-pyfiledrop-token"])


def _dropzone_chunk(dzuuid: str, data: bytes, index: int, chunk_size: int) -> tuple[bytes, str]:
    """The multipart body of one Dropzone chunk (the page's fields, then the file part) and its content type."""
    boundary = uuid.uuid4().hex
    offset = index * chunk_size
    fields = {"dzuuid": dzuuid, "dzchunkindex": index, "dztotalfilesize": len(data), "dzchunksize": chunk_size,
              "dztotalchunkcount": -(-len(data) // chunk_size), "dzchunkbyteoffset": offset}  # fmt: skip
    head = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                   for k, v in fields.items())  # fmt: skip
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="twice.bin"\r\n'
             "Content-Type: application/octet-stream\r\n\r\n")  # fmt: skip
    body = head.encode() + data[offset : offset + chunk_size] + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_a_last_chunk_sent_to_two_replicas_completes_the_upload_once(
    cluster: Cluster, make_source: Callable[..., Source]
) -> None:
    """The last Dropzone chunk arrives at replicas 1 and 2 at once (a retry while the first try still runs): both
    write it, both record it, both find every byte received and try to complete the upload. One completes it;
    the other waits for that result: both answers say complete, with the sha256, and the file is stored once."""
    owner = _owner(cluster.url)
    source = make_source(16 * MiB, "twice.bin")
    data = source.path.read_bytes()
    chunk_size, dzuuid = 8 * MiB, str(uuid.uuid4())
    body, content_type = _dropzone_chunk(dzuuid, data, 0, chunk_size)
    first = httpx.post(f"{cluster.replicas[0].url}/upload", content=body,
                       headers={**owner, "content-type": content_type}, timeout=30)  # fmt: skip
    assert first.status_code == 200, first.text
    body, content_type = _dropzone_chunk(dzuuid, data, 1, chunk_size)
    gates = [GatedBody(body, len(body) // 2), GatedBody(body, len(body) // 2)]

    def send(index: int) -> httpx.Response:
        replica = cluster.replicas[1 + index]
        headers = {**owner, "content-type": content_type, "content-length": str(len(body))}
        return httpx.post(f"{replica.url}/upload", content=iter(gates[index]), headers=headers, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        sent = [pool.submit(send, index) for index in range(2)]
        for gate in gates:
            assert gate.paused.wait(30)
        for gate in gates:
            gate.go.set()
        answers = [future.result() for future in sent]
    assert [a.status_code for a in answers] == [200, 200], ([a.text for a in answers], _logs(cluster))
    results = [(a.json()["complete"], a.json()["sha256"]) for a in answers]
    assert results == [(True, source.sha256)] * 2  # the loser answered with the winner's result
    with httpx.Client(base_url=cluster.url, timeout=30) as client:
        check_stored(client, answers[0].json()["id"], source, owner["x-pyfiledrop-token"])
    assert cluster.stored_copies(source.sha256) == 1


def test_head_elsewhere_reports_only_recorded_bytes_and_a_killed_writer_loses_none(
    cluster: Cluster, make_source: Callable[..., Source]
) -> None:
    """A PATCH streams into replica 1 while replica 2 answers HEADs: the offsets never exceed what was sent and
    never go back. Then replica 1 is killed (SIGKILL) mid-body: the offset replica 2 reports afterwards is at
    least the last one it reported (those bytes were recorded), and the upload finishes from there at replica 0
    with the right sha256. Replica 1 is started again for the next tests."""
    owner = _owner(cluster.url)
    source = make_source(24 * MiB, "killed.bin")
    data = source.path.read_bytes()
    upload_id = _create(cluster.replicas[0].url, owner, len(data), "killed.bin")
    body = GatedBody(data, 12 * MiB)
    writer, watcher, finisher = cluster.replicas[1], cluster.replicas[2], cluster.replicas[0]

    def send() -> None:
        headers = {**PATCH, "upload-offset": "0", "content-length": str(len(data))}
        with contextlib.suppress(httpx.HTTPError, TimeoutError):  # the replica is killed under it
            httpx.patch(f"{writer.url}/files/{upload_id}", content=iter(body), headers=headers, timeout=30)

    thread = threading.Thread(target=send)
    thread.start()
    seen = [0]
    deadline = time.monotonic() + 20
    while seen[-1] < 8 * MiB and time.monotonic() < deadline:  # checkpoints record a long PATCH as it goes
        offset = _offset(watcher.url, upload_id)
        assert seen[-1] <= offset <= body.sent, (seen[-1], offset, body.sent)
        seen.append(offset)
        time.sleep(0.05)
    assert seen[-1] >= 8 * MiB, seen[-5:]
    writer.kill()
    body.go.set()
    thread.join(30)
    kept = _offset(watcher.url, upload_id)
    assert seen[-1] <= kept <= 12 * MiB
    writer.start()
    headers = {**PATCH, "upload-offset": str(kept)}
    rest = httpx.patch(f"{finisher.url}/files/{upload_id}", content=data[kept:], headers=headers, timeout=60)
    assert rest.status_code == 204, rest.text
    with httpx.Client(base_url=cluster.url, timeout=30) as client:
        check_stored(client, upload_id, source, owner["x-pyfiledrop-token"])


def test_a_replica_killed_and_restarted_mid_upload(
    cluster: Cluster, make_source: Callable[..., Source], tmp_path: Path
) -> None:
    """``pyfiledrop upload -j 4`` through nginx, rate-limited so it lasts a few seconds; one replica is killed
    with SIGKILL part-way and started again a moment later. The client's retries resume at the other replicas
    (nginx skips the dead one) and the file arrives whole."""
    owner = _owner(cluster.url)["x-pyfiledrop-token"]
    source = make_source(48 * MiB, "restart.bin")
    client = subprocess.Popen(
        [sys.executable, "-m", "pyfiledrop", "upload", "--url", cluster.url, f"--token={owner}", "-j", "4", "--json",
         "-q", "--limit-rate", "16M", "--state", str(tmp_path / "state.json"), str(source.path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.0)
        assert client.poll() is None, client.communicate()
        victim = cluster.replicas[2]
        victim.kill()
        time.sleep(0.5)
        victim.start()
        out, err = client.communicate(timeout=90)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == 0, err
    answer = json.loads(out.splitlines()[-1])
    with httpx.Client(base_url=cluster.url, timeout=30) as http:
        check_stored(http, answer["upload_url"].rstrip("/").rsplit("/", 1)[-1], source, owner)


def test_a_restarted_replica_keeps_the_others_unfinished_uploads(cluster: Cluster) -> None:
    """Start-up recovery among live replicas: an unfinished upload (a partial file with a live record) is not
    a crash's leftover; after a restart it is still there and finishes at the restarted replica."""
    owner = _owner(cluster.url)
    data = os.urandom(3 * MiB)
    upload_id = _create(cluster.replicas[0].url, owner, len(data), "partial.bin")
    first = httpx.patch(f"{cluster.replicas[0].url}/files/{upload_id}", content=data[:MiB],
                        headers={**PATCH, "upload-offset": "0"})  # fmt: skip
    assert first.status_code == 204
    restarted = cluster.replicas[1]
    restarted.kill()
    restarted.start()
    assert _offset(restarted.url, upload_id) == MiB
    rest = httpx.patch(f"{restarted.url}/files/{upload_id}", content=data[MiB:],
                       headers={**PATCH, "upload-offset": str(MiB)})  # fmt: skip
    assert rest.status_code == 204, rest.text
    info = httpx.get(f"{restarted.url}/api/uploads/{upload_id}", headers=owner).json()
    assert info["sha256"] == hashlib.sha256(data).hexdigest()


def test_no_multipart_upload_is_left_dangling(cluster: Cluster) -> None:
    """On S3: once the uploads above are done, every multipart upload was completed or aborted, except those of
    uploads still receiving — and terminating them aborts theirs."""
    check_no_dangling_multiparts(cluster, ADMIN_TOKEN)
