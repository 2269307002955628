"""The video API end to end: a real server, real uploads, jobs that make new uploads, the OpenAPI document."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, ServerProcess
from tests.video.helpers import of_type, packets


def _put(client: httpx.Client, token: str, path: Path) -> str:
    response = client.put(f"/{path.name}", content=path.read_bytes(),
                          headers={"x-pyfiledrop-token": token, "accept": "application/json"})  # fmt: skip
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _wait(client: httpx.Client, token: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}", headers={"x-pyfiledrop-token": token}).json()
        assert 0.0 <= job["progress"] <= 1.0
        if job["status"] in ("done", "failed"):
            return dict(job)
        assert job["status"] in ("queued", "running")
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def _download(client: httpx.Client, token: str, upload_id: str, to: Path) -> Path:
    response = client.get(f"/download/{upload_id}", headers={"x-pyfiledrop-token": token})
    assert response.status_code == 200
    to.write_bytes(response.content)
    return to


def test_trim_makes_a_new_upload_of_the_same_owner(
    client: httpx.Client, owner: str, clips: dict[str, Path], tmp_path: Path
) -> None:
    auth = {"x-pyfiledrop-token": owner}
    source = _put(client, owner, clips["h264.mp4"])
    probe = client.get(f"/api/uploads/{source}/video", headers=auth)
    assert probe.status_code == 200
    assert probe.json()["keyframes"] == [0.0, 2.0, 4.0, 6.0, 8.0] and probe.json()["rotation"] == 0
    started = client.post(f"/api/uploads/{source}/video", json={"op": "trim", "start": 3.1, "end": 7.5}, headers=auth)
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["status"] in ("queued", "running") and job["progress"] == 0.0 and job["id"]
    assert job["operation"]["start"] == 2.0  # the keyframe the cut really starts on, known before it runs
    done = _wait(client, owner, job["id"])
    assert done["status"] == "done" and done["progress"] == 1.0 and "error" not in done
    made = client.get(f"/api/uploads/{done['upload']}", headers=auth).json()
    assert made["complete"] and made["filename"].endswith(".mp4") and made["id"] != source
    copy = _download(client, owner, made["id"], tmp_path / "cut.mp4")
    assert made["sha256"] == hashlib.sha256(copy.read_bytes()).hexdigest()
    expected = [s.sha256 for s in of_type(packets(clips["h264.mp4"]), "video") if 2.0 <= s.pts < 7.5]
    assert [s.sha256 for s in of_type(packets(copy), "video")] == expected
    mine = {u["id"] for u in client.get("/api/uploads", headers=auth).json()["uploads"]}
    assert {source, made["id"]} <= mine  # the original stays


def test_rotate_job_and_admin_may_run_it(client: httpx.Client, owner: str, clips: dict[str, Path]) -> None:
    source = _put(client, owner, clips["vp9.webm"])
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    started = client.post(f"/api/uploads/{source}/video", json={"op": "rotate", "degrees": 90}, headers=admin)
    assert started.status_code == 202, started.text
    done = _wait(client, owner, started.json()["id"])  # the owner follows the job the admin started
    assert done["status"] == "done"
    probe = client.get(f"/api/uploads/{done['upload']}/video", headers={"x-pyfiledrop-token": owner}).json()
    assert probe["rotation"] == 90 and probe["container"].startswith("matroska")
    made = client.get(f"/api/uploads/{done['upload']}", headers={"x-pyfiledrop-token": owner}).json()
    assert made["filename"].endswith(".webm")


def test_non_video_upload_is_422_and_makes_nothing(client: httpx.Client, owner: str, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 50)
    auth = {"x-pyfiledrop-token": owner}
    source = _put(client, owner, text)
    probe = client.get(f"/api/uploads/{source}/video", headers=auth)
    assert probe.status_code == 422 and "not a video" in probe.json()["detail"]
    started = client.post(f"/api/uploads/{source}/video", json={"op": "rotate", "degrees": 90}, headers=auth)
    assert started.status_code == 422 and "not a video" in started.json()["detail"]
    assert [u["id"] for u in client.get("/api/uploads", headers=auth).json()["uploads"]] == [source]


@pytest.mark.parametrize(
    ("body", "status"),
    [({"op": "rotate", "degrees": 45}, 400), ({"op": "spin"}, 400), ({"op": "trim", "start": 5, "end": 4}, 400),
     ({"op": "trim", "start": "x", "end": 4}, 400), ({"op": "trim", "start": 1, "end": 4, "snap": "middle"}, 400),
     ({"op": "trim", "start": 8.5, "end": 9.5, "snap": "after"}, 422), ({"op": "trim", "start": 60, "end": 70}, 422),
     (["rotate"], 400)],
)  # fmt: skip
def test_bad_requests_are_refused_readably(
    client: httpx.Client, owner: str, clips: dict[str, Path], body: object, status: int
) -> None:
    source = _put(client, owner, clips["h264.mp4"])
    response = client.post(f"/api/uploads/{source}/video", json=body, headers={"x-pyfiledrop-token": owner})
    assert response.status_code == status, response.text
    assert response.json()["detail"]


def test_only_the_owner_or_admin(client: httpx.Client, owner: str, clips: dict[str, Path]) -> None:
    source = _put(client, owner, clips["h264.mp4"])
    other = client.get("/api/session").json()["token"]
    client.cookies.clear()
    stranger = {"x-pyfiledrop-token": other}
    assert client.get(f"/api/uploads/{source}/video", headers=stranger).status_code == 403
    assert client.post(f"/api/uploads/{source}/video", json={"op": "rotate", "degrees": 90},
                       headers=stranger).status_code == 403  # fmt: skip
    started = client.post(f"/api/uploads/{source}/video", json={"op": "rotate", "degrees": 180},
                          headers={"x-pyfiledrop-token": owner})  # fmt: skip
    job_id = started.json()["id"]
    assert client.get(f"/api/jobs/{job_id}", headers=stranger).status_code == 403
    assert client.delete(f"/api/jobs/{job_id}", headers=stranger).status_code == 403
    assert client.get(f"/api/jobs/{job_id}").status_code in (401, 403)
    assert client.get("/api/jobs/nope", headers=stranger).status_code == 404
    assert _wait(client, owner, job_id)["status"] == "done"
    finished = client.delete(f"/api/jobs/{job_id}", headers={"x-pyfiledrop-token": owner})
    assert finished.status_code == 409  # nothing left to cancel


def test_cancel_a_queued_job(make_server: type[ServerProcess], tmp_path: Path, clips: dict[str, Path]) -> None:
    server = make_server(tmp_path / "s", ["--video-jobs", "1"]).start()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        token = client.get("/api/session").json()["token"]
        auth = {"x-pyfiledrop-token": token}
        source = _put(client, token, clips["hevc.mkv"])
        jobs = [client.post(f"/api/uploads/{source}/video", json={"op": "rotate", "degrees": d}, headers=auth).json()
                for d in (90, 180, 270, 0, 90, 180)]  # fmt: skip
        last = client.delete(f"/api/jobs/{jobs[-1]['id']}", headers=auth)
        if last.status_code == 200:  # still queued or running when asked: cancelled, and no upload made
            assert last.json()["status"] == "failed" and last.json()["error"] == "cancelled"
            assert "upload" not in last.json()
        else:  # one slot copied all five before the request came: nothing to cancel
            assert last.status_code == 409
        for job in jobs[:-1]:
            assert _wait(client, token, job["id"])["status"] == "done"
        listed = client.get("/api/uploads", headers=auth).json()["uploads"]
        assert len(listed) == 1 + 5 + (last.status_code == 409)
        assert not list((server.storage / ".partial" / "video-jobs").iterdir())  # no scratch copy stays


def test_a_restart_marks_unfinished_jobs_failed(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s").start()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        token = client.get("/api/session").json()["token"]
        owner = client.get("/api/session", headers={"x-pyfiledrop-token": token}).json()["owner"]
    server.kill()
    with sqlite3.connect(server.storage / ".pyfiledrop.sqlite3") as db:
        db.execute("INSERT INTO jobs (id, owner, upload_id, operation, status, progress, created_at, updated_at) "
                   "VALUES ('cut-off', ?, 'x', '{\"op\": \"rotate\", \"degrees\": 90}', 'running', 0.4, 1, 1)",
                   (owner,))  # fmt: skip
    (server.storage / ".partial" / "video-jobs").mkdir(parents=True, exist_ok=True)
    (server.storage / ".partial" / "video-jobs" / "cut-off.mp4").write_bytes(b"half a copy")
    server.start()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        job = client.get("/api/jobs/cut-off", headers={"x-pyfiledrop-token": token}).json()
    assert job["status"] == "failed" and "stopped" in job["error"]
    assert not (server.storage / ".partial" / "video-jobs").exists()  # the cut-off copy is gone


def test_a_server_that_edits_no_video_leaves_nothing_in_the_partial_folder(
    make_server: type[ServerProcess], tmp_path: Path
) -> None:
    server = make_server(tmp_path / "s").start()
    assert list((server.storage / ".partial").iterdir()) == []


def test_openapi_documents_the_video_api(client: httpx.Client) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {"get", "post"} <= paths["/api/uploads/{upload_id}/video"].keys()
    assert {"get", "delete"} <= paths["/api/jobs/{job_id}"].keys()
    assert "422" in paths["/api/uploads/{upload_id}/video"]["post"]["responses"]
