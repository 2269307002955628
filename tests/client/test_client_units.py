"""Pure pieces of the upload client: rates, URLs, metadata, the state file."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import pytest

from pyfiledrop.client import UsageError, parse_rate
from pyfiledrop.client.state import StateStore, default_path, entry_key
from pyfiledrop.client.tus import encode_metadata, normalize_url


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("0", 0),
        ("500", 500),
        ("500K", 512_000),
        ("2M", 2 << 20),
        ("1.5m", 1572864),
        ("1G", 1 << 30),
        ("4MiB/s", 4 << 20),
    ],
)
def test_parse_rate(text: str, rate: int) -> None:
    assert parse_rate(text) == rate


def test_parse_rate_refuses_nonsense() -> None:
    with pytest.raises(UsageError):
        parse_rate("fast")


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://h:1", "http://h:1"),
        ("h:1", "http://h:1"),
        ("http://h:1/", "http://h:1"),
        ("http://h:1/files/", "http://h:1"),
        ("https://h/drop/files", "https://h/drop"),
        ("http://h:1/?x=1#y", "http://h:1"),
    ],
)
def test_normalize_url(url: str, base: str) -> None:
    assert normalize_url(url).geturl() == base


def test_normalize_url_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match="not an http"):
        normalize_url("ftp://h/")


def test_metadata_is_base64_per_tus() -> None:
    encoded = encode_metadata({"filename": "résumé final.pdf", "filetype": "application/pdf"})
    pairs = dict(pair.split(" ") for pair in encoded.split(","))
    assert base64.b64decode(pairs["filename"]).decode() == "résumé final.pdf"


def test_state_round_trip_and_tokens(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "deep" / "uploads.json")
    key = entry_key("http://h:1", "/a", 10, 5)
    assert store.get(key) is None
    store.put(key, {"parts": [["/files/x", 0, 10]]})
    assert store.get(key)["parts"] == [["/files/x", 0, 10]]  # type: ignore[index]
    store.update(key, lambda e: e.__setitem__("final", "/files/y"))
    assert store.get(key)["final"] == "/files/y"  # type: ignore[index]
    store.set_token("http://h:1", "tok")
    assert StateStore(tmp_path / "deep" / "uploads.json").token("http://h:1") == "tok"
    store.remove(key)
    assert store.get(key) is None


def test_state_survives_a_garbled_file_and_parallel_writers(tmp_path: Path) -> None:
    path = tmp_path / "uploads.json"
    path.write_text("{not json")
    store = StateStore(path)
    assert store.get("k") is None

    def write(i: int) -> None:
        for j in range(20):
            store.put(f"k{i}-{j}", {"parts": []})

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(store.get(f"k{i}-{j}") is not None for i in range(4) for j in range(20))


def test_default_state_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYFILEDROP_STATE", str(tmp_path / "s.json"))
    assert default_path() == tmp_path / "s.json"
    monkeypatch.delenv("PYFILEDROP_STATE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_path() == tmp_path / "pyfiledrop" / "uploads.json"


def test_a_keep_alive_connection_the_server_closed_is_reopened_at_once() -> None:
    """The server answers with keep-alive, then closes the idle connection: the next request must not fail."""
    import socket
    import time
    from urllib.parse import urlsplit

    from pyfiledrop.client.http import Connection

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[int] = []

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            accepted.append(1)
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
                time.sleep(0.05)  # then close it, as an idle timeout would

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = Connection(urlsplit(f"http://127.0.0.1:{port}"), timeout=5)
    try:
        assert client.request("GET", "/", {}).body == b"ok"
        time.sleep(0.2)
        assert client.request("GET", "/", {}).body == b"ok"
    finally:
        client.close()
        listener.close()
    assert len(accepted) == 2
