"""The table runner for the tus tests (tusd's ``httpTest``, in Python), and the rules every tus verb obeys.

Each ``test_tus_<verb>.py`` is a table of :class:`HttpTest` cases, run over httpx against the real shared server
(``pyfiledrop serve --allow-downloads --max-size 64``). A case names the upload it needs (:class:`Given`), the
request, and what must come back: the status, headers (exact value, :data:`ABSENT` or :data:`PRESENT`), and
optional follow-up checks (``then``), such as "the offset did not move". Every response on /files must carry
``Tus-Resumable: 1.0.0`` and no request may get a 5xx.

The rules for every verb live here too: the Tus-Resumable version check (412 with Tus-Version, and the request
is not processed) and "bad input never 5xx".
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TUS_VERSION = "1.0.0"
OCTET = "application/offset+octet-stream"
OWNER_HEADER = "X-Pyfiledrop-Token"
MAX_SIZE = 64 * 2**20  # the shared server's --max-size 64
ID_PATTERN = r"[A-Za-z0-9_-]{24}"


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


ABSENT = _Marker("ABSENT")  # the response must not have this header
PRESENT = _Marker("PRESENT")  # the response must have this header, any value


# -- plain tus requests, no cookies kept (every request says who it is, or is anonymous) ----------------------------


def request(
    client: httpx.Client,
    method: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    content: bytes | Iterable[bytes] | None = None,
    *,
    tus: bool = True,
) -> httpx.Response:
    sent = {"Tus-Resumable": TUS_VERSION} if tus else {}
    sent.update(headers or {})
    try:
        return client.request(method, url, headers=sent, content=content)
    finally:
        client.cookies.clear()


def create(
    client: httpx.Client,
    owner: str | None,
    length: int | None = 10,
    *,
    concat: str | None = None,
    metadata: str | None = None,
    body: bytes | None = None,
) -> str:
    """POST /files/ → the upload's path (/files/ID)."""
    headers: dict[str, str] = {}
    if owner is not None:
        headers[OWNER_HEADER] = owner
    if length is None:
        headers["Upload-Defer-Length"] = "1"
    else:
        headers["Upload-Length"] = str(length)
    if concat is not None:
        headers["Upload-Concat"] = concat
    if metadata is not None:
        headers["Upload-Metadata"] = metadata
    if body is not None:
        headers["Content-Type"] = OCTET
    response = request(client, "POST", "/files/", headers, body)
    assert response.status_code == 201, response.text
    return httpx.URL(response.headers["location"]).path


def patch(
    client: httpx.Client, path: str, offset: int, data: bytes, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    return request(
        client, "PATCH", path, {"Content-Type": OCTET, "Upload-Offset": str(offset), **(headers or {})}, data
    )


def head(client: httpx.Client, path: str) -> httpx.Response:
    return request(client, "HEAD", path)


def offset_of(client: httpx.Client, path: str) -> int:
    response = head(client, path)
    assert response.status_code == 200, response.status_code
    return int(response.headers["upload-offset"])


def upload_id(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def metadata_header(**values: str) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items())


def parse_metadata(header: str) -> dict[str, str]:
    result = {}
    for pair in header.split(","):
        key, _, value = pair.strip().partition(" ")
        result[key] = base64.b64decode(value).decode()
    return result


def checksum(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def download(client: httpx.Client, path: str) -> bytes:
    response = client.get(f"/download/{upload_id(path)}")
    client.cookies.clear()
    assert response.status_code == 200, response.text
    return response.content


# -- the table ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Given:
    """An upload made before the request; the case's URL and headers name its path as ``{upload}``."""

    length: int | None = 10  # None: Upload-Defer-Length: 1
    written: bytes = b""  # PATCHed at offset 0 after creation
    concat: str | None = None  # "partial"
    metadata: str | None = None
    terminated: bool = False
    final_of: tuple[bytes, ...] = ()  # instead: a final upload concatenated from finished partials holding these
    anonymous: bool = False  # made without the owner token

    def make(self, client: httpx.Client, owner: str) -> str:
        who = None if self.anonymous else owner
        if self.final_of:
            parts = [create(client, who, len(data), concat="partial") for data in self.final_of]
            for part, data in zip(parts, self.final_of, strict=True):
                assert patch(client, part, 0, data).status_code == 204
            response = request(
                client, "POST", "/files/", _owner_headers(who, {"Upload-Concat": "final;" + " ".join(parts)})
            )
            assert response.status_code == 201, response.text
            return httpx.URL(response.headers["location"]).path
        path = create(client, who, self.length, concat=self.concat, metadata=self.metadata)
        if self.written:
            response = patch(client, path, 0, self.written)
            assert response.status_code == 204, response.text
        if self.terminated:
            assert request(client, "DELETE", path, _owner_headers(who)).status_code == 204
        return path


def _owner_headers(owner: str | None, headers: Mapping[str, str] | None = None) -> dict[str, str]:
    result = dict(headers or {})
    if owner is not None:
        result[OWNER_HEADER] = owner
    return result


Then = Callable[[httpx.Client, str, httpx.Response], None]


@dataclass(frozen=True)
class HttpTest:
    name: str
    method: str
    status: int
    url: str = "/files/"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    given: Given | None = None
    res_headers: Mapping[str, str | _Marker] = field(default_factory=dict)
    then: tuple[Then, ...] = ()
    tus_resumable: str | None = TUS_VERSION  # the request's Tus-Resumable; None: not sent
    with_owner: bool = True  # send the owner's token with the request

    def run(self, client: httpx.Client, owner: str) -> httpx.Response:
        path = self.given.make(client, owner) if self.given is not None else ""
        url = self.url.format(upload=path)
        headers = {name: value.format(upload=path) for name, value in self.headers.items()}
        if self.tus_resumable is not None:
            headers.setdefault("Tus-Resumable", self.tus_resumable)
        if self.with_owner:
            headers.setdefault(OWNER_HEADER, owner)
        response = request(client, self.method, url, headers, self.body, tus=False)
        assert response.status_code < 500, response.text
        assert response.status_code == self.status, f"{self.name}: {response.status_code} {response.text!r}"
        if self.method != "OPTIONS":
            assert response.headers.get("tus-resumable") == TUS_VERSION, "every tus response names the version"
        for name, expected in self.res_headers.items():
            actual = response.headers.get(name)
            if expected is ABSENT:
                assert actual is None, f"{name} must be absent, got {actual!r}"
            elif expected is PRESENT:
                assert actual is not None, f"{name} is missing"
            else:
                assert actual == expected, f"{name}: {actual!r} != {expected!r}"
        for check in self.then:
            check(client, path, response)
        return response


def ids(cases: Iterable[HttpTest]) -> list[str]:
    return [case.name for case in cases]


# -- reusable follow-up checks ----------------------------------------------------------------------------------------


def offset_is(expected: int) -> Then:
    def check(client: httpx.Client, path: str, response: httpx.Response) -> None:
        assert offset_of(client, path) == expected

    return check


def head_status_is(expected: int) -> Then:
    def check(client: httpx.Client, path: str, response: httpx.Response) -> None:
        assert head(client, path).status_code == expected

    return check


def owner_has_no_uploads(client: httpx.Client, path: str, response: httpx.Response) -> None:
    """The request was not processed: the owner it named owns nothing."""
    owner = response.request.headers[OWNER_HEADER]
    listing = client.get("/api/uploads", headers={OWNER_HEADER: owner})
    assert listing.status_code == 200
    assert listing.json()["uploads"] == []


def error_body_names(code: str) -> Then:
    def check(client: httpx.Client, path: str, response: httpx.Response) -> None:
        assert response.text.startswith(f"{code}:"), response.text

    return check


# -- Tus-Resumable: every request but OPTIONS, 412 + Tus-Version otherwise, and the request is not processed ----------

VERSION_CASES = [
    HttpTest(
        "post_without_tus_resumable_returns_412_with_tus_version_and_creates_nothing",
        "POST", 412, headers={"Upload-Length": "10"}, tus_resumable=None,
        res_headers={"Tus-Version": TUS_VERSION, "Location": ABSENT},
        then=(owner_has_no_uploads, error_body_names("ERR_UNSUPPORTED_VERSION")),
    ),
    HttpTest(
        "post_with_an_unsupported_version_returns_412_with_tus_version_and_creates_nothing",
        "POST", 412, headers={"Upload-Length": "10"}, tus_resumable="0.2.2",
        res_headers={"Tus-Version": TUS_VERSION, "Location": ABSENT}, then=(owner_has_no_uploads,),
    ),
    HttpTest(
        "head_without_tus_resumable_returns_412_without_upload_offset",
        "HEAD", 412, url="{upload}", given=Given(written=b"abc"), tus_resumable=None,
        res_headers={"Tus-Version": TUS_VERSION, "Upload-Offset": ABSENT},
    ),
    HttpTest(
        "patch_with_version_2_returns_412_and_appends_nothing",
        "PATCH", 412, url="{upload}", given=Given(written=b"abc"), tus_resumable="2.0.0",
        headers={"Content-Type": OCTET, "Upload-Offset": "3"}, body=b"defg",
        res_headers={"Tus-Version": TUS_VERSION}, then=(offset_is(3),),
    ),
    HttpTest(
        "delete_without_tus_resumable_returns_412_and_keeps_the_upload",
        "DELETE", 412, url="{upload}", given=Given(), tus_resumable=None,
        res_headers={"Tus-Version": TUS_VERSION}, then=(head_status_is(200),),
    ),
    HttpTest(
        "options_needs_no_tus_resumable",
        "OPTIONS", 200, tus_resumable=None, res_headers={"Tus-Version": TUS_VERSION},
    ),
    HttpTest(
        "options_with_an_unsupported_version_still_answers_204",
        "OPTIONS", 200, tus_resumable="0.2.2", res_headers={"Tus-Version": TUS_VERSION},
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", VERSION_CASES, ids=ids(VERSION_CASES))
def test_tus_resumable_is_checked_on_every_verb_but_options(case: HttpTest, client: httpx.Client, owner: str) -> None:
    case.run(client, owner)


# -- bad input never gets a 5xx ---------------------------------------------------------------------------------------

_TUS_HEADERS = [
    "Upload-Length", "Upload-Offset", "Upload-Defer-Length", "Upload-Metadata", "Upload-Concat", "Upload-Checksum",
    "Tus-Resumable", "Content-Type", "Content-Length", "X-HTTP-Method-Override", "X-Pyfiledrop-Token",
]  # fmt: skip
_header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"), max_size=40
)
_tricky_values = st.sampled_from([
    "", " ", "-1", "0", "1", "10", "1e3", "0x10", "99999999999999999999", "١٢", "partial", "final;", "final;/files/x",
    "final;/files/AAAAAAAAAAAAAAAAAAAAAAAA", "sha1", "sha1 !!", "crc32 AAAA", "md5 ====", "1.0.0", "PATCH", "GET",
    "application/offset+octet-stream", "a b,a c", "key", ",", "k \u00e9\u00e9",
])  # fmt: skip


@pytest.fixture(scope="module")
def fuzz_target(shared_server: Any) -> str:
    with httpx.Client(base_url=shared_server.url, timeout=30) as c:
        return create(c, None, 1000, metadata=metadata_header(filename="fuzz.bin"))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["POST", "HEAD", "PATCH", "DELETE", "OPTIONS"]),
    target=st.sampled_from(["/files/", "{upload}", "/files/AAAAAAAAAAAAAAAAAAAAAAAA", "/files/not-an-id", "/files"]),
    headers=st.dictionaries(st.sampled_from(_TUS_HEADERS), _tricky_values | _header_text, max_size=5),
    body=st.binary(max_size=64),
)
def test_garbage_tus_requests_never_get_a_5xx(
    client: httpx.Client, fuzz_target: str, method: str, target: str, headers: dict[str, str], body: bytes
) -> None:
    headers.pop("Content-Length", None)  # httpx sets it from the body; a lying one only makes the server wait
    raw = {name: value.strip().encode() for name, value in headers.items()}  # UTF-8 bytes: obs-text, as on the wire
    url = target.format(upload=fuzz_target)
    response = client.request(method, url, headers=raw, content=body if method in ("POST", "PATCH") else None)
    client.cookies.clear()
    assert response.status_code < 500, (method, url, headers, response.status_code, response.text)
    assert response.headers.get("tus-resumable") == TUS_VERSION
