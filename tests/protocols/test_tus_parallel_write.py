"""pyfiledrop's tus extension: PATCHes with ``X-Pyfiledrop-Parallel-Write: 1`` write disjoint regions of one
upload at once (no concatenation pass); plain tus PATCHes keep the spec's exact-offset rule."""

from __future__ import annotations

import hashlib
import itertools
import os
import threading

import httpx

from tests.protocols.test_tus_httptest import create, download, head, patch, request, upload_id

PARALLEL = {"X-Pyfiledrop-Parallel-Write": "1"}


def test_config_advertises_the_extension(client: httpx.Client) -> None:
    assert client.get("/api/config").json()["parallel_write"] is True


def test_regions_written_at_once_make_the_exact_file(client: httpx.Client, owner: str) -> None:
    data = os.urandom(3 * 1_000_000 + 7)
    path = create(client, owner, len(data))
    bounds = [0, 1_000_000, 2_000_000, len(data)]
    answers: dict[int, httpx.Response] = {}

    def send(start: int, end: int) -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=30) as own:
            answers[start] = patch(own, path, start, data[start:end], PARALLEL)

    threads = [threading.Thread(target=send, args=pair) for pair in itertools.pairwise(bounds)]
    for thread in reversed(threads):  # the last region first: out of order on purpose
        thread.start()
    for thread in threads:
        thread.join()
    assert all(answer.status_code == 204 for answer in answers.values()), answers
    assert int(answers[1_000_000].headers["upload-offset"]) >= 2_000_000  # where the run from there ends
    status = client.get(f"/api/uploads/{upload_id(path)}", headers={"x-pyfiledrop-token": owner}).json()
    assert status["complete"] and status["sha256"] == hashlib.sha256(data).hexdigest()
    client.headers["x-pyfiledrop-token"] = owner
    assert download(client, path) == data


def test_a_region_answer_says_where_its_run_ends_and_head_the_prefix(client: httpx.Client, owner: str) -> None:
    path = create(client, owner, 100)
    answer = patch(client, path, 50, b"x" * 20, PARALLEL)
    assert answer.status_code == 204 and answer.headers["upload-offset"] == "70"
    assert head(client, path).headers["upload-offset"] == "0"  # tus clients still see the contiguous prefix
    status = client.get(f"/api/uploads/{upload_id(path)}").json()
    assert status["received"] == [[50, 70]]


def test_without_the_header_the_spec_rule_holds(client: httpx.Client, owner: str) -> None:
    path = create(client, owner, 100)
    assert patch(client, path, 50, b"x" * 20).status_code == 409


def test_overlaps_overruns_and_unsuitable_uploads_are_refused(client: httpx.Client, owner: str) -> None:
    path = create(client, owner, 100)
    assert patch(client, path, 10, b"a" * 20, PARALLEL).status_code == 204
    assert patch(client, path, 20, b"b" * 20, PARALLEL).status_code == 409  # half over received bytes
    assert patch(client, path, 90, b"c" * 20, PARALLEL).status_code == 413  # past Upload-Length
    assert patch(client, path, 10, b"a" * 20, PARALLEL).status_code == 204  # a retry of received bytes: fine
    part = create(client, owner, 100, concat="partial")
    assert patch(client, part, 50, b"x", PARALLEL).status_code == 400
    deferred = request(client, "POST", "/files/", {"Upload-Defer-Length": "1", "x-pyfiledrop-token": owner})
    assert patch(client, deferred.headers["location"], 50, b"x", PARALLEL).status_code == 400
