"""The declared file type is served only as an RFC 9110 media type: no client value ends the download's head early.

tus ``Upload-Metadata`` ``filetype`` and a Dropzone part's ``Content-Type`` used to reach the download's head raw,
so ``text/html\\r\\n\\r\\n<script>`` ran a script in the server's own origin. The answers are read here from a raw
socket: exactly one head, then exactly the file's bytes, whatever was declared or is found in an old record.
"""

from __future__ import annotations

import base64
import sqlite3
import uuid

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.security import rawhttp

TUS = {"tus-resumable": "1.0.0"}
DATA = b"hello, plain bytes"
OCTET = b"application/octet-stream"

HOSTILE_TYPES = [
    "text/html\r\n\r\n<script>alert(document.domain)</script>",
    "text/html\r<script>alert(1)</script>",
    "text/html\n<script>alert(1)</script>",
    "text/plain\x00<script>",
    "text/plain; charset=€",  # outside Latin-1: a download of it was a 500
    "text/html, text/plain",
    'text/html; x="unterminated',
    "<script>alert(1)</script>",
]


def _metadata(**values: str) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items() if value)


def _tus_upload(server: ServerProcess, filetype: str, filename: str = "page.html") -> tuple[str, str]:
    """A finished tus upload (creation-with-upload) declaring ``filetype``: (id, owner token)."""
    headers = {**TUS, "upload-length": str(len(DATA)), "content-type": "application/offset+octet-stream",
               "upload-metadata": _metadata(filename=filename, filetype=filetype)}  # fmt: skip
    created = httpx.post(f"{server.url}/files/", headers=headers, content=DATA)
    assert created.status_code == 201, created.text
    return created.headers["x-upload-id"], created.headers["x-pyfiledrop-token"]


def _assert_one_safe_head(answer: rawhttp.RawAnswer, content_type: bytes = OCTET) -> None:
    assert answer.status == 200, answer.raw[:300]
    assert answer.body == DATA  # the head ended where the server meant it to, and nothing came after the file
    assert answer.raw == answer.head + b"\r\n\r\n" + DATA
    assert answer.header_lines(b"content-type") == [content_type]
    assert b"<script" not in answer.head and b"\x00" not in answer.head
    assert answer.header_lines(b"x-content-type-options") == [b"nosniff"]
    for line in answer.head.split(b"\r\n"):
        assert b"\r" not in line and b"\n" not in line


@pytest.mark.parametrize("filetype", HOSTILE_TYPES)
def test_a_tus_filetype_that_is_no_media_type_is_served_as_octet_stream(
    shared_server: ServerProcess, filetype: str
) -> None:
    upload_id, token = _tus_upload(shared_server, filetype)
    _assert_one_safe_head(rawhttp.get(shared_server.port, f"/download/{upload_id}"))
    _assert_one_safe_head(rawhttp.get(shared_server.port, f"/files/{upload_id}"))
    status = httpx.get(f"{shared_server.url}/api/uploads/{upload_id}", headers={"x-pyfiledrop-token": token})
    assert status.json()["content_type"] == "application/octet-stream"


@pytest.mark.parametrize(
    "filetype", ["text/csv", "text/plain; charset=utf-8", 'text/plain;charset="utf-8"', "application/vnd.a+json"]
)
def test_a_valid_filetype_is_kept(shared_server: ServerProcess, filetype: str) -> None:
    upload_id, _ = _tus_upload(shared_server, filetype)
    _assert_one_safe_head(rawhttp.get(shared_server.port, f"/download/{upload_id}"), filetype.encode())


def test_without_a_declared_type_the_extension_may_tell(shared_server: ServerProcess) -> None:
    """A refused type is octet-stream whatever the name (page.html above); none declared: the name's extension."""
    upload_id, _ = _tus_upload(shared_server, "", filename="notes.txt")
    _assert_one_safe_head(rawhttp.get(shared_server.port, f"/download/{upload_id}"), b"text/plain")


def _dropzone_form(part_type: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"page.html\"\r\n".encode()
        + b"Content-Type: " + part_type + b"\r\n\r\n" + DATA + f"\r\n--{boundary}--\r\n".encode()
    )  # fmt: skip
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    "part_type", [b"text/html\r<script>alert(1)</script>", "text/plain; charset=€".encode(), b"text/html\x00"]
)
def test_a_dropzone_part_type_that_is_no_media_type_is_served_as_octet_stream(
    shared_server: ServerProcess, part_type: bytes
) -> None:
    body, content_type = _dropzone_form(part_type)
    response = httpx.post(f"{shared_server.url}/upload", content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    assert response.json()["content_type"] == "application/octet-stream"
    _assert_one_safe_head(rawhttp.get(shared_server.port, f"/download/{response.json()['id']}"))


def test_a_put_content_type_outside_ascii_is_not_kept(shared_server: ServerProcess) -> None:
    response = httpx.put(f"{shared_server.url}/page.html", content=DATA,
                         headers={"content-type": b"text/pl\xe9in", "accept": "application/json"})  # fmt: skip
    assert response.json()["content_type"] == "application/octet-stream"
    _assert_one_safe_head(rawhttp.get(shared_server.port, f"/download/{response.json()['id']}"))


@pytest.mark.parametrize("stored_type", HOSTILE_TYPES)
def test_an_old_record_with_a_hostile_type_or_name_is_served_safely(
    shared_server: ServerProcess, stored_type: str
) -> None:
    """Records written before the check at intake: the type and the name are checked again when served, for a
    download and for a share link."""
    upload_id, token = _tus_upload(shared_server, "text/plain")
    with sqlite3.connect(shared_server.storage / ".pyfiledrop.sqlite3", timeout=10) as db:
        db.execute("UPDATE uploads SET content_type = ?, filename = ? WHERE id = ?",
                   (stored_type, "x\r\n\r\nX-Injected: 1\x00\u2028y", upload_id))  # fmt: skip
    db.close()
    answer = rawhttp.get(shared_server.port, f"/download/{upload_id}")
    _assert_one_safe_head(answer)
    (disposition,) = answer.header_lines(b"content-disposition")
    assert disposition.isascii() and b"\x00" not in disposition
    assert answer.header_lines(b"x-injected") == []
    share = httpx.post(f"{shared_server.url}/api/uploads/{upload_id}/shares", json={},
                       headers={"x-pyfiledrop-token": token})  # fmt: skip
    assert share.status_code == 201
    _assert_one_safe_head(rawhttp.get(shared_server.port, f"/s/{share.json()['token']}"))
    status = httpx.get(f"{shared_server.url}/api/uploads/{upload_id}", headers={"x-pyfiledrop-token": token})
    assert status.json()["content_type"] == "application/octet-stream"
