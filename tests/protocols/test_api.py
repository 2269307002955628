"""The JSON API: config, session, my uploads, status with ranges, delete, admin, OpenAPI."""

from __future__ import annotations

import json
import os
import socket

import httpx

from tests.conftest import ADMIN_TOKEN, ServerProcess

TUS = {"tus-resumable": "1.0.0"}


def _put(client: httpx.Client, token: str, name: str, data: bytes) -> str:
    response = client.put(f"/{name}", content=data, headers={"x-pyfiledrop-token": token, "accept": "application/json"})
    assert response.status_code == 201
    return str(response.json()["id"])


def test_config_reports_the_limits_clients_need(client: httpx.Client) -> None:
    body = client.get("/api/config").json()
    assert body["max_size_mib"] == 64 and body["max_size_bytes"] == 64 * 2**20
    assert body["timeout_ms"] == 5000 and body["allow_downloads"] is True
    assert body["chunk_size"] > 0 and body["parallel_chunks"] is True and body["force_chunking"] is True
    assert "concatenation" in body["tus_extensions"]


def test_session_issues_an_httponly_cookie(client: httpx.Client) -> None:
    response = client.get("/api/session")
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert response.json()["owner"] and response.json()["admin"] is False
    again = client.get("/api/session")  # the cookie is sent back: same owner, no new token
    assert again.json()["owner"] == response.json()["owner"] and again.json()["token"] is None


def test_owner_lists_only_their_uploads(client: httpx.Client, owner: str) -> None:
    other = client.get("/api/session").json()["token"]
    client.cookies.clear()
    mine = _put(client, owner, "mine.txt", b"1")
    theirs = _put(client, other, "theirs.txt", b"2")
    listed = client.get("/api/uploads", headers={"x-pyfiledrop-token": owner}).json()["uploads"]
    ids = {u["id"] for u in listed}
    assert mine in ids and theirs not in ids


def test_listing_without_token_is_401(client: httpx.Client) -> None:
    response = client.get("/api/uploads")
    assert response.status_code == 401
    assert response.json()["error"] == "ERR_NOT_AUTHORIZED"


def test_forged_token_is_not_an_identity(client: httpx.Client) -> None:
    response = client.get("/api/uploads", headers={"x-pyfiledrop-token": "someone.forged"})
    assert response.status_code == 401


def test_status_shows_received_ranges_for_resuming(client: httpx.Client) -> None:
    created = client.post("/files/", headers={**TUS, "upload-length": "1000"})
    upload_id = created.headers["location"].rsplit("/", 1)[-1]
    client.patch(f"/files/{upload_id}", content=b"a" * 300,
                 headers={**TUS, "upload-offset": "0", "content-type": "application/offset+octet-stream"})  # fmt: skip
    status = client.get(f"/api/uploads/{upload_id}").json()
    assert status["received"] == [[0, 300]] and status["offset"] == 300 and status["state"] == "receiving"
    assert status["size"] == 1000 and status["complete"] is False and status["download_url"] is None


def test_owner_deletes_and_others_cannot(client: httpx.Client, owner: str) -> None:
    upload_id = _put(client, owner, "del.txt", os.urandom(100))
    other = client.get("/api/session").json()["token"]
    client.cookies.clear()
    assert client.delete(f"/api/uploads/{upload_id}", headers={"x-pyfiledrop-token": other}).status_code == 403
    assert client.delete(f"/api/uploads/{upload_id}").status_code == 401
    assert client.delete(f"/api/uploads/{upload_id}", headers={"x-pyfiledrop-token": owner}).status_code == 204
    assert client.get(f"/download/{upload_id}").status_code == 410
    assert client.get(f"/api/uploads/{upload_id}", headers={"x-pyfiledrop-token": owner}).status_code == 410


def test_admin_sees_and_deletes_everything(client: httpx.Client, owner: str) -> None:
    upload_id = _put(client, owner, "adm.txt", b"x")
    admin = {"x-pyfiledrop-token": ADMIN_TOKEN}
    listed = client.get("/api/uploads?all=1", headers=admin).json()["uploads"]
    assert any(u["id"] == upload_id and u["owner"] for u in listed)
    stats = client.get("/api/admin/stats", headers=admin).json()
    assert stats["disk_total"] > 0 and stats["uploads"] >= 1
    assert client.get("/api/admin/stats", headers={"x-pyfiledrop-token": owner}).status_code == 403
    assert client.delete(f"/api/uploads/{upload_id}", headers=admin).status_code == 204


def test_bad_ids_are_400_and_unknown_404(client: httpx.Client) -> None:
    assert client.get("/api/uploads/..%2F..%2Fetc").status_code in (400, 404)
    assert client.get("/api/uploads/short").status_code == 400
    assert client.get("/api/uploads/AAAAAAAAAAAAAAAAAAAAAAAA").status_code == 404


def test_openapi_document_describes_the_api(client: httpx.Client) -> None:
    document = client.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert {"/api/uploads", "/api/uploads/{upload_id}", "/api/config"} <= set(document["paths"])


def _raw(server: ServerProcess, request: bytes) -> tuple[bytes, bytes]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


def test_a_request_the_http_layer_refuses_is_answered_in_the_routes_own_words(shared_server: ServerProcess) -> None:
    """Found by schemathesis: a malformed Content-Length on an API route came back as plain text, undocumented."""
    bad = b"Content-Length: Q UL\r\n"
    target = b"DELETE /api/uploads/CZ4ABUe_kAvwVF5BEz41pi94 HTTP/1.1\r\n"
    head, body = _raw(shared_server, target + b"Host: x\r\n" + bad + b"\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"content-type: application/json" in head.lower()
    error = json.loads(body)
    assert error["error"] == "ERR_BAD_REQUEST" and "Content-Length" in error["detail"]
    head, body = _raw(shared_server, b"PUT /some.bin HTTP/1.1\r\nHost: x\r\n" + bad + b"\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"content-type: text/plain" in head.lower()
    assert b"Content-Length" in body and not body.startswith(b"{")
    head, body = _raw(shared_server, b"GET /api/config HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 417 ") and json.loads(body)["error"] == "ERR_HTTP_417"
