"""``Origin: null`` (sandboxed iframes, data: URLs, some cross-site redirects) is a foreign page, not a script."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ServerProcess


@pytest.mark.parametrize("origin_header", ["origin", "referer"])
def test_a_cookie_request_from_an_opaque_origin_is_refused(
    client: httpx.Client, shared_server: ServerProcess, origin_header: str
) -> None:
    client.get("/api/session")  # the browser now has its owner cookie
    upload_id = client.put("/mine.txt", content=b"x", headers={"accept": "application/json"}).json()["id"]
    null = {origin_header: "null"}
    assert client.delete(f"/api/uploads/{upload_id}", headers=null).status_code == 403
    assert client.patch(f"/api/uploads/{upload_id}", json={"expires_in": 60}, headers=null).status_code == 403
    refused = client.post(f"/api/uploads/{upload_id}/shares", json={}, headers=null)
    assert refused.status_code == 403 and "opaque origin" in refused.json()["detail"]
    assert client.get(f"/api/uploads/{upload_id}").json()["state"] == "complete"  # nothing was done
    assert client.delete(f"/api/uploads/{upload_id}", headers={"origin": shared_server.url}).status_code == 204


def test_a_script_without_origin_and_a_token_header_with_origin_null_still_work(
    client: httpx.Client, owner: str
) -> None:
    token = {"x-pyfiledrop-token": owner}
    upload_id = client.put("/t.txt", content=b"x", headers={**token, "accept": "application/json"}).json()["id"]
    # A header token is not sent by a browser on its own: no CSRF risk, whatever the Origin says.
    assert client.patch(f"/api/uploads/{upload_id}", json={"expires_in": 60},
                        headers={**token, "origin": "null"}).status_code == 200  # fmt: skip
    client.cookies.set("pyfiledrop_token", owner)
    assert client.delete(f"/api/uploads/{upload_id}").status_code == 204  # cookie, no Origin: curl, not a page


def test_a_method_override_is_checked_like_the_method_it_names(client: httpx.Client) -> None:
    client.get("/api/session")
    upload_id = client.put("/o.txt", content=b"x", headers={"accept": "application/json"}).json()["id"]
    for origin in ("null", "https://evil.example"):
        sneaky = client.get(f"/api/uploads/{upload_id}", headers={"x-http-method-override": "DELETE", "origin": origin})
        assert sneaky.status_code == 403
    assert client.get(f"/api/uploads/{upload_id}").json()["state"] == "complete"
