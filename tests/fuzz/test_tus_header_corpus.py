"""A corpus of malformed tus requests: every one is answered 4xx (never 5xx), and the server stays healthy.

Negative, huge, non-numeric, unicode-digit and padded offsets and lengths; bad base64, non-UTF-8 and duplicate keys in
Upload-Metadata; unknown algorithms, bad base64 and wrong lengths in Upload-Checksum; bad Upload-Concat lists; bad
Tus-Resumable; garbage X-HTTP-Method-Override; upload ids with traversal, NUL, unicode or overlong. Most go through
httpx (header values as raw UTF-8 bytes, as they travel); the ones httpx would refuse or rewrite (raw NUL, ``..`` in
the path, bad Content-Length) go over a raw socket. Each case names the status it expects; all are 4xx.

Runs against the shared server (``--max-size 64``). The targets are made once: an unfinished upload (1000 bytes, 10
received), a finished one, a finished partial upload, an unfinished partial, a deferred-length one and a deleted one.
"""

from __future__ import annotations

import base64
import hashlib
import socket
from dataclasses import dataclass, field

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.protocols.test_tus_httptest import create, patch, request

OCTET = "application/offset+octet-stream"
NO_ID = "A" * 24  # well-formed, never issued


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str  # may name {upload} {done} {partial} {open_partial} {deferred} {gone}
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    expect: tuple[int, ...] = (400,)
    tus: bool = True  # send Tus-Resumable: 1.0.0 unless the case sets it
    raw: bytes | None = None  # sent as is over a socket instead ({upload} etc. are filled in)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


BAD_NUMBERS = {
    "negative": "-1", "negative-zero": "-0", "plus": "+10", "decimal": "10.0", "exponent": "1e1", "hex": "0xa",
    "letters": "ten", "empty": "", "inner-space": "1 0", "inner-tab": "1\t0", "comma-list": "10,10",
    "semicolon": "10;", "arabic-indic-digits": "\u0661\u0660", "fullwidth-digits": "\uff11\uff10",
    "superscript": "\u00b9\u2070", "twenty-digits": "9" * 20, "hundred-digits": "9" * 100, "nul-free-unicode": "１",
    "underscore": "1_0", "unary-minus-sign": "\u221210",
}  # fmt: skip


def offset_cases() -> list[Case]:
    cases = [
        Case(f"patch-offset-{name}", "PATCH", "{upload}", {"Upload-Offset": value, "Content-Type": OCTET}, b"x" * 10)
        for name, value in BAD_NUMBERS.items()
    ]
    cases += [
        Case("patch-offset-int64-max", "PATCH", "{upload}", {"Upload-Offset": str(2**63 - 1), "Content-Type": OCTET},
             b"x", expect=(409,)),
        Case("patch-offset-beyond-int64", "PATCH", "{upload}",
             {"Upload-Offset": "9999999999999999999", "Content-Type": OCTET}, b"x", expect=(409,)),
        Case("patch-offset-behind", "PATCH", "{upload}", {"Upload-Offset": "3", "Content-Type": OCTET}, b"x",
             expect=(409,)),
        Case("patch-offset-ahead", "PATCH", "{upload}", {"Upload-Offset": "11", "Content-Type": OCTET}, b"x",
             expect=(409,)),
        Case("patch-offset-missing", "PATCH", "{upload}", {"Content-Type": OCTET}, b"x"),
        Case("patch-offset-on-finished-upload", "PATCH", "{done}", {"Upload-Offset": "0", "Content-Type": OCTET},
             b"x", expect=(409,)),
        Case("patch-offset-on-deleted-upload", "PATCH", "{gone}", {"Upload-Offset": "0", "Content-Type": OCTET},
             b"x", expect=(410,)),
        Case("patch-body-past-upload-length", "PATCH", "{upload}", {"Upload-Offset": "10", "Content-Type": OCTET},
             b"x" * 991, expect=(413,)),
    ]  # fmt: skip
    return cases


def length_cases() -> list[Case]:
    cases = [Case(f"post-length-{name}", "POST", "/files/", {"Upload-Length": value}) for name, value in
             BAD_NUMBERS.items()]  # fmt: skip
    cases += [
        Case(f"post-defer-length-{name}", "POST", "/files/", {"Upload-Defer-Length": value})
        for name, value in {"zero": "0", "two": "2", "true": "true", "empty": "", "minus-one": "-1"}.items()
    ]
    cases += [
        Case("post-length-over-max-size", "POST", "/files/", {"Upload-Length": str(64 * 2**20 + 1)}, expect=(413,)),
        Case("post-length-int64-max", "POST", "/files/", {"Upload-Length": str(2**63 - 1)}, expect=(413,)),
        Case("post-length-and-defer", "POST", "/files/", {"Upload-Length": "10", "Upload-Defer-Length": "1"}),
        Case("post-no-length", "POST", "/files/"),
        Case("post-with-body-longer-than-length", "POST", "/files/", {"Upload-Length": "5", "Content-Type": OCTET},
             b"x" * 6, expect=(413,)),
        Case("patch-length-changes-the-length", "PATCH", "{upload}",
             {"Upload-Offset": "10", "Upload-Length": "999", "Content-Type": OCTET}, b"x"),
    ]  # fmt: skip
    cases += [
        Case(f"patch-deferred-length-{name}", "PATCH", "{deferred}",
             {"Upload-Offset": "0", "Upload-Length": value, "Content-Type": OCTET}, b"x")
        for name, value in BAD_NUMBERS.items()
    ]  # fmt: skip
    shorter = {"Upload-Offset": "0", "Upload-Length": "0", "Content-Type": OCTET}
    cases.append(Case("patch-deferred-length-less-than-received", "PATCH", "{deferred}", shorter, b"xy", expect=(413,)))
    return cases


def metadata_cases() -> list[Case]:
    bad = {
        "bad-base64": "filename !!!!", "missing-padding": "filename YQ", "space-inside-value": "filename YQ== Yg==",
        "duplicate-key": f"filename {b64(b'a')},filename {b64(b'b')}", "empty-key": f",filename {b64(b'a')}",
        "empty-pair-in-middle": f"a {b64(b'a')},,b {b64(b'b')}", "trailing-comma": f"filename {b64(b'a')},",
        "not-utf8": f"filename {b64(bytes([0xFF, 0xFE]))}", "truncated-utf8": f"filename {b64('😀'.encode()[:3])}",
        "key-with-tab": f"file\tname {b64(b'a')}", "url-safe-alphabet": "filename _-8=",
        "only-comma": ",", "value-is-data-url": "filename data:text/plain;base64,YQ==",
    }  # fmt: skip
    return [Case(f"post-metadata-{name}", "POST", "/files/", {"Upload-Length": "1", "Upload-Metadata": value})
            for name, value in bad.items()]  # fmt: skip


def checksum_cases() -> list[Case]:
    piece = b"x" * 10
    good_sha1 = b64(hashlib.sha1(piece).digest())
    bad = {
        "unknown-algorithm": (f"crc32 {b64(b'1234')}", 400), "empty": ("", 400), "algorithm-only": ("sha1", 400),
        "bad-base64": ("sha1 !!!!", 400), "short-digest": ("sha1 AAAA", 460),
        "long-digest": (f"sha1 {b64(bytes(21))}", 460), "sha1-digest-as-sha256": (f"sha256 {good_sha1}", 460),
        "colon-separator": (f"sha1:{good_sha1}", 400), "hex-digest": (f"sha1 {hashlib.sha1(piece).hexdigest()}", 460),
        "digest-of-other-bytes": (f"sha1 {b64(hashlib.sha1(b'y' * 10).digest())}", 460),
        "md5-of-other-bytes": (f"md5 {b64(hashlib.md5(b'y').digest())}", 460),
        "two-checksums": (f"sha1 {good_sha1}, md5 {b64(bytes(16))}", 400),
        "cyrillic-a-in-algorithm": (f"sh\u0430 {good_sha1}", 400),
    }  # fmt: skip
    return [
        Case(f"patch-checksum-{name}", "PATCH", "{upload}",
             {"Upload-Offset": "10", "Content-Type": OCTET, "Upload-Checksum": value}, piece, expect=(status,))
        for name, (value, status) in bad.items()
    ]  # fmt: skip


def concat_cases() -> list[Case]:
    bad = {
        "partial-with-semicolon": ("partial;", 400), "capitalised": ("Partial", 400),
        "final-without-list": ("final", 400),
        "final-empty-list": ("final;", 400), "final-blank-list": ("final; ,", 400),
        "final-bad-id": ("final;/files/short", 400), "final-unknown-id": (f"final;/files/{NO_ID}", 404),
        "final-of-a-normal-upload": ("final;{upload}", 400),
        "final-same-part-twice": ("final;{partial} {partial}", 400),
        "final-of-an-unfinished-part": ("final;{open_partial}", 400), "final-of-a-deleted-part": ("final;{gone}", 400),
        "final-not-an-upload-url": (f"final;/download/{NO_ID}", 400), "final-sub-path": ("final;{partial}/x", 400),
        "final-traversal": (f"final;/files/../files/{NO_ID}", 404), "other-word": ("whole", 400),
    }  # fmt: skip
    cases = [Case(f"post-concat-{name}", "POST", "/files/", {"Upload-Concat": value}, expect=(status,))
             for name, (value, status) in bad.items()]  # fmt: skip
    cases += [
        Case("post-concat-final-with-length", "POST", "/files/", {"Upload-Concat": "final;{partial}",
             "Upload-Length": "5"}),
        Case("post-concat-final-with-body", "POST", "/files/", {"Upload-Concat": "final;{partial}",
             "Content-Type": OCTET}, b"abc", expect=(403,)),
        Case("patch-a-final-upload-is-forbidden", "PATCH", "{done_final}", {"Upload-Offset": "0",
             "Content-Type": OCTET}, b"x", expect=(403,)),
    ]  # fmt: skip
    return cases


def version_cases() -> list[Case]:
    cases = []
    for method, path, headers, body in (
        ("POST", "/files/", {"Upload-Length": "1"}, b""),
        ("PATCH", "{upload}", {"Upload-Offset": "10", "Content-Type": OCTET}, b"x"),
        ("HEAD", "{upload}", {}, b""),
        ("DELETE", "{upload}", {}, b""),
    ):
        for name, value in {"old": "0.2.2", "next": "2.0.0", "short": "1.0", "empty": "", "list": "1.0.0,1.0.0",
                            "suffixed": "1.0.0-rc1", "unicode": "１.0.0"}.items():  # fmt: skip
            cases.append(Case(f"{method.lower()}-tus-resumable-{name}", method, path, {**headers,
                              "Tus-Resumable": value}, body, expect=(412,)))  # fmt: skip
        cases.append(Case(f"{method.lower()}-tus-resumable-missing", method, path, headers, body, expect=(412,),
                          tus=False))  # fmt: skip
    return cases


def override_cases() -> list[Case]:
    values = {"unknown": ("FROB", 405), "empty": ("", 405), "put": ("PUT", 405), "two-methods": ("POST, PATCH", 405),
              "long": ("A" * 4000, 405), "patch-on-collection": ("PATCH", 405), "delete-on-collection": ("DELETE", 405),
              "get-on-collection": ("GET", 405), "trace": ("TRACE", 405)}  # fmt: skip
    cases = [Case(f"override-{name}", "POST", "/files/", {"X-HTTP-Method-Override": value, "Upload-Length": "1"},
                  expect=(status,)) for name, (value, status) in values.items()]  # fmt: skip
    cases += [
        Case("override-get-of-unfinished-upload", "POST", "{upload}", {"X-HTTP-Method-Override": "GET"},
             expect=(409,)),
        # 404 "an upload URL has no sub-paths" today: app._tus matches ["files", _, *_] for any other method
        Case("override-frob-on-upload", "POST", "{upload}", {"X-HTTP-Method-Override": "FROB"}, expect=(404, 405)),
        Case("override-patch-with-bad-offset", "POST", "{upload}", {"X-HTTP-Method-Override": "PATCH",
             "Upload-Offset": "-1", "Content-Type": OCTET}, b"x"),
        Case("override-delete-with-old-version", "POST", "{upload}", {"X-HTTP-Method-Override": "DELETE",
             "Tus-Resumable": "0.2.2"}, expect=(412,)),
    ]  # fmt: skip
    return cases


def id_cases() -> list[Case]:
    ids = {
        "short": ("/files/short", 400), "23-chars": ("/files/" + "A" * 23, 400),
        "25-chars": ("/files/" + "A" * 25, 400),
        "overlong": ("/files/" + "A" * 5000, 400), "percent-nul": ("/files/" + "A" * 23 + "%00", 400),
        "encoded-traversal": ("/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 404), "encoded-dot-dot": ("/files/%2e%2e", 400),
        "fullwidth": ("/files/" + "%EF%BC%A1" * 24, 400), "space": ("/files/%20", 400),
        "unknown": (f"/files/{NO_ID}", 404), "sub-path": ("{upload}/extra", 404), "encoded-dot": ("/files/%2e", 400),
        "backslash": ("/files/..%5C..%5Cetc", 400), "encoded-slash-inside": ("/files/AAAAAAAAAAAA%2FAAAAAAAAAAA", 404),
    }  # fmt: skip
    cases = []
    for name, (path, status) in ids.items():
        cases.append(Case(f"head-id-{name}", "HEAD", path, expect=(status,)))
        cases.append(Case(f"patch-id-{name}", "PATCH", path, {"Upload-Offset": "0", "Content-Type": OCTET}, b"x",
                          expect=(status,)))  # fmt: skip
        cases.append(Case(f"delete-id-{name}", "DELETE", path, expect=(status,)))
    return cases


def content_type_cases() -> list[Case]:
    values = {"missing": None, "octet-stream": "application/octet-stream", "form": "multipart/form-data; boundary=x",
              "prefix": "application/offset+octet", "empty": ""}  # fmt: skip
    cases = []
    for name, value in values.items():
        headers = {"Upload-Offset": "10"} | ({} if value is None else {"Content-Type": value})
        cases.append(Case(f"patch-content-type-{name}", "PATCH", "{upload}", headers, b"x", expect=(415,)))
    return cases


def raw_cases() -> list[Case]:
    def req(line: str, *headers: str, body: bytes = b"") -> bytes:
        return (line + "\r\nHost: x\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode() + body

    tus = "Tus-Resumable: 1.0.0"
    patch_ = ("Upload-Offset: 10", "Content-Type: " + OCTET)
    return [
        Case("raw-path-traversal", "HEAD", "", raw=req("HEAD /files/../../etc/passwd HTTP/1.1", tus), expect=(404,)),
        Case("raw-traversal-to-an-id", "HEAD", "", raw=req(f"HEAD /files/../files/../{NO_ID} HTTP/1.1", tus),
             expect=(404,)),
        Case("raw-dot-dot", "HEAD", "", raw=req("HEAD /files/.. HTTP/1.1", tus), expect=(400, 404, 405)),
        Case("raw-dot", "DELETE", "", raw=req("DELETE /files/. HTTP/1.1", tus), expect=(400, 404, 405)),
        Case("raw-nul-in-path", "HEAD", "", raw=req("HEAD /files/" + "A" * 23 + "\x00 HTTP/1.1", tus),
             expect=(400,)),
        Case("raw-nul-in-offset", "PATCH", "", raw=req("PATCH {upload} HTTP/1.1", tus, "Upload-Offset: 1\x000",
             "Content-Type: " + OCTET, "Content-Length: 1", body=b"x"), expect=(400,)),
        Case("raw-negative-content-length", "PATCH", "", raw=req("PATCH {upload} HTTP/1.1", tus, *patch_,
             "Content-Length: -1"), expect=(400,)),
        Case("raw-letters-content-length", "PATCH", "", raw=req("PATCH {upload} HTTP/1.1", tus, *patch_,
             "Content-Length: ten"), expect=(400,)),
        Case("raw-two-content-lengths", "PATCH", "", raw=req("PATCH {upload} HTTP/1.1", tus, *patch_,
             "Content-Length: 1", "Content-Length: 2", body=b"xy"), expect=(400,)),
        Case("raw-huge-content-length", "PATCH", "", raw=req("PATCH {upload} HTTP/1.1", tus, *patch_,
             "Content-Length: " + "9" * 30), expect=(400, 413)),
        Case("raw-bad-chunk-size", "PATCH", "", raw=req("PATCH {upload} HTTP/1.1", tus, *patch_,
             "Transfer-Encoding: chunked", body=b"zz\r\nx\r\n0\r\n\r\n"), expect=(400,)),  # never 499 (RFC 9112 §7.1)
        Case("raw-latin1-offset", "PATCH", "", raw=req("PATCH {upload} HTTP/1.1", tus, "Content-Type: " + OCTET,
             "Content-Length: 1", body=b"x").replace(b"Host: x", b"Host: x\r\nUpload-Offset: \xb9\xb2"),
             expect=(400,)),
    ]  # fmt: skip


CASES = [
    *offset_cases(), *length_cases(), *metadata_cases(), *checksum_cases(), *concat_cases(), *version_cases(),
    *override_cases(), *id_cases(), *content_type_cases(), *raw_cases(),
]  # fmt: skip


@pytest.fixture(scope="module")
def targets(shared_server: ServerProcess) -> dict[str, str]:
    with httpx.Client(base_url=shared_server.url, timeout=30) as c:
        owner = c.get("/api/session").json()["token"]
        c.cookies.clear()
        upload = create(c, owner, 1000)
        assert patch(c, upload, 0, b"0123456789").status_code == 204
        done = create(c, owner, 3)
        assert patch(c, done, 0, b"abc").status_code == 204
        partial = create(c, None, 4, concat="partial")
        assert patch(c, partial, 0, b"part").status_code == 204
        done_final = create(c, None, 2, concat="partial")
        assert patch(c, done_final, 0, b"pa").status_code == 204
        made = request(c, "POST", "/files/", {"Upload-Concat": f"final;{done_final}", "X-Pyfiledrop-Token": owner})
        assert made.status_code == 201, made.text
        gone = create(c, owner, 5)
        assert request(c, "DELETE", gone, {"X-Pyfiledrop-Token": owner}).status_code == 204
        return {
            "upload": upload, "done": done, "partial": partial, "open_partial": create(c, None, 9, concat="partial"),
            "deferred": create(c, owner, None), "gone": gone, "done_final": httpx.URL(made.headers["location"]).path,
            "owner": owner,
        }  # fmt: skip


def raw_status(port: int, data: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while b"\r\n" not in answer:
            piece = sock.recv(4096)
            if not piece:
                break
            answer += piece
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def fill(text: str, targets: dict[str, str]) -> str:
    for key, value in targets.items():
        text = text.replace("{" + key + "}", value)
    return text


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_tus_request_gets_a_4xx(case: Case, targets: dict[str, str], shared_server: ServerProcess) -> None:
    if case.raw is not None:
        status = raw_status(shared_server.port, fill(case.raw.decode("latin-1"), targets).encode("latin-1"))
        text = ""
    else:
        headers = {name: fill(value, targets).encode() for name, value in case.headers.items()}
        if case.tus and "Tus-Resumable" not in case.headers:
            headers["Tus-Resumable"] = b"1.0.0"
        headers["X-Pyfiledrop-Token"] = targets["owner"].encode()
        with httpx.Client(base_url=shared_server.url, timeout=30) as c:
            response = c.request(case.method, fill(case.path, targets), headers=headers, content=case.body or None)
        status, text = response.status_code, response.text
        if case.method != "OPTIONS" and case.path.startswith(("/files", "{")):
            assert response.headers.get("tus-resumable") == "1.0.0", "every tus answer names the version"
    assert 400 <= status < 500, f"{case.name}: {status} {text[:300]!r}"
    assert status in case.expect, f"{case.name}: {status} (expected {case.expect}) {text[:300]!r}"
    with httpx.Client(base_url=shared_server.url, timeout=10) as c:
        assert request(c, "HEAD", targets["upload"]).headers["upload-offset"] == "10", "a refused request wrote"


def test_the_server_is_healthy_and_the_targets_unchanged_after_the_corpus(
    targets: dict[str, str], shared_server: ServerProcess
) -> None:
    with httpx.Client(base_url=shared_server.url, timeout=10) as c:
        assert c.get("/api/config").status_code == 200
        head = request(c, "HEAD", targets["upload"])
        assert head.status_code == 200
        assert head.headers["upload-offset"] == "10", "no malformed request wrote to the upload"
        assert request(c, "HEAD", targets["done"]).headers["upload-offset"] == "3"
    print(f"tus malformed-header corpus: {len(CASES)} cases, all 4xx")
