"""Every protocol through nginx in front of three replicas: each request may land at any replica.

The checks are on the bytes: each stored file is downloaded (through nginx, so from any replica) and its sha256
compared with the source's, and the sha256 the server recorded is the same.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.interop.conftest import MiB, Source, TusJsClient, check_stored
from tests.replicas.conftest import REPLICAS, Cluster, check_no_dangling_multiparts, wait_complete

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

ROOT = Path(__file__).parents[2]
TUS = {"tus-resumable": "1.0.0"}
ADMIN = {"x-pyfiledrop-token": ADMIN_TOKEN}


def _owner(url: str) -> str:
    return str(httpx.get(f"{url}/api/session", timeout=10).json()["token"])


def test_requests_are_spread_over_every_replica(cluster: Cluster) -> None:
    """Round-robin without stickiness: twelve requests on one keep-alive connection reach all three replicas."""
    with httpx.Client(base_url=cluster.url, timeout=10) as client:
        for _ in range(12):
            assert client.get("/api/config").status_code == 200
    reached = Counter(cluster.nginx.upstreams()[-12:])
    assert set(reached) == {f"127.0.0.1:{r.port}" for r in cluster.replicas}, reached


def test_tus_js_client_with_parallel_uploads(
    cluster: Cluster, tus_js: TusJsClient, make_source: Callable[..., Source],
) -> None:  # fmt: skip
    """parallelUploads: 4 (four partial uploads, then their concatenation), 2 MiB PATCHes: the partial uploads'
    requests and the final one go to different replicas."""
    owner = _owner(cluster.url)
    source = make_source(24 * MiB, "tus-js.bin")
    run = tus_js.run(endpoint=f"{cluster.url}/files/", file=source.path, headers={"X-Pyfiledrop-Token": owner},
                     parallelUploads=4, chunkSize=2 * MiB)  # fmt: skip
    assert run.returncode == 0, run.events
    upload_id = run.last("success")["url"].rstrip("/").rsplit("/", 1)[-1]
    # The client needs only the final upload's 201: the replica that took it joins the parts in the background
    # (server-side copies on S3), and the others see it complete once that is done — at every replica.
    for replica in cluster.replicas:
        wait_complete(replica.url, upload_id, owner)
        assert httpx.head(f"{replica.url}/files/{upload_id}", headers=TUS).headers["upload-offset"] == str(source.size)
    with httpx.Client(base_url=cluster.url, timeout=30) as client:
        check_stored(client, upload_id, source, owner)


def test_dropzone_chunks_in_parallel(cluster: Cluster, make_source: Callable[..., Source]) -> None:
    """The web page's protocol: 1 MiB multipart chunks, four at a time, on one keep-alive connection each."""
    source = make_source(20 * MiB + 12345, "dropzone.bin")
    sent = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "dropzone_client.py"), f"{cluster.url}/upload", str(source.path),
         "--chunk-size", str(MiB), "--parallel", "4"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    answer = json.loads(sent.stdout)
    assert answer["complete"] is True and answer["sha256"] == source.sha256
    with httpx.Client(base_url=cluster.url, timeout=30) as client:
        response = client.get(f"/download/{answer['id']}")  # --allow-downloads: by id, from any replica
        assert response.status_code == 200
        assert hashlib.sha256(response.content).hexdigest() == source.sha256


def test_curl_put(cluster: Cluster, make_source: Callable[..., Source]) -> None:
    owner = _owner(cluster.url)
    source = make_source(16 * MiB, "curl.bin")
    sent = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "-H", f"X-Pyfiledrop-Token: {owner}", "-H", "Accept: application/json",
         "-T", str(source.path), f"{cluster.url}/curl.bin"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    with httpx.Client(base_url=cluster.url, timeout=30) as client:
        check_stored(client, json.loads(sent.stdout)["id"], source, owner)


def test_upload_client_with_four_streams(
    cluster: Cluster,
    make_source: Callable[..., Source],
    tmp_path: Path,
) -> None:
    """``pyfiledrop upload -j 4``: four regions of one upload written in parallel, each PATCH at any replica."""
    owner = _owner(cluster.url)
    source = make_source(32 * MiB, "client.bin")
    result = _upload_client(cluster.url, owner, source.path, tmp_path)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer["sha256"] == source.sha256
    with httpx.Client(base_url=cluster.url, timeout=30) as client:
        check_stored(client, answer["upload_url"].rstrip("/").rsplit("/", 1)[-1], source, owner)


def _upload_client(url: str, owner: str, path: Path, state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyfiledrop", "upload", "--url", url, f"--token={owner}", "-j", "4", "--json", "-q",
         "--state", str(state / "state.json"), *extra, str(path)],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip


def _simultaneous_creations(cluster: Cluster, token: str, count: int) -> Counter[int]:
    """``count`` tus creations through a drop link, sent to the replicas in turn (four each): every connection is
    opened first and every request written in one tight loop, so they arrive together; their status codes."""
    request = (f"POST /files/ HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 3\r\n"
               f"X-Pyfiledrop-Drop: {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").encode()  # fmt: skip
    sockets = [socket.create_connection(("127.0.0.1", cluster.replicas[i % REPLICAS].port), 10) for i in range(count)]
    try:
        for sock in sockets:
            sock.sendall(request)
        statuses = []
        for sock in sockets:
            answer = b""
            while b"\r\n" not in answer and (piece := sock.recv(4096)):
                answer += piece
            statuses.append(int(answer.split(b" ", 2)[1]))
    finally:
        for sock in sockets:
            sock.close()
    return Counter(statuses)


def test_drop_link_limit_holds_across_replicas(cluster: Cluster) -> None:
    """12 creations at once on a 3-file drop link, spread over the three replicas: exactly 3 are admitted (three
    links in a row, for a race that a per-process lock alone would lose)."""
    for attempt in range(3):
        created = httpx.post(f"{cluster.url}/api/drops", json={"label": f"limit {attempt}", "max_files": 3},
                             headers=ADMIN)  # fmt: skip
        assert created.status_code == 201, created.text
        answers = _simultaneous_creations(cluster, created.json()["token"], 12)
        assert answers == {201: 3, 507: 9}, answers


def test_links_made_at_one_replica_work_at_the_others(cluster: Cluster) -> None:
    """The signing key is one for all replicas: an owner token, a share link and a drop link made at replica 0
    are honoured at replicas 1 and 2."""
    first, *others = cluster.replicas
    owner = _owner(first.url)
    mine = {"x-pyfiledrop-token": owner, "accept": "application/json"}
    put = httpx.put(f"{first.url}/hello.txt", content=b"hello replicas", headers=mine)
    assert put.status_code == 201, put.text
    upload_id = put.json()["id"]
    share = httpx.post(f"{first.url}/api/shares", json={"upload_ids": [upload_id]}, headers=mine)
    assert share.status_code == 201, share.text
    path = httpx.URL(share.json()["url"]).path
    drop = httpx.post(f"{first.url}/api/drops", json={"label": "at-0"}, headers=ADMIN).json()["token"]
    for replica in others:
        info = httpx.get(f"{replica.url}/api/uploads/{upload_id}", headers=mine)
        assert info.status_code == 200 and info.json()["sha256"], info.text
        shared = httpx.get(f"{replica.url}{path}/1")
        assert shared.status_code == 200 and shared.content == b"hello replicas", shared.status_code
        dropped = httpx.put(f"{replica.url}/via-drop.txt", content=b"x", headers={"x-pyfiledrop-drop": drop})
        assert dropped.status_code == 201, dropped.text


def test_no_multipart_upload_is_left_dangling(cluster: Cluster) -> None:
    """On S3: once the uploads above are done, every multipart upload was completed or aborted, except those of
    uploads still receiving — and terminating them aborts theirs."""
    check_no_dangling_multiparts(cluster, ADMIN_TOKEN)
