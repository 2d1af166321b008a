"""Issue 20 at the HTTP door, in-process: a request's credential is checked before its body is read, no header
reaches a 500 (Range with thousands of digits), and every URL that holds a token answers ``no-store``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.helpers import APP_API_KEY, make_app
from tests.openapi_check import check_response

H = {"X-API-Key": APP_API_KEY}
HUGE = "9" * 4301  # past Python's int-digit limit: int() of it raises


@pytest.fixture
def handle(tmp_path: Path):
    app = make_app(tmp_path)
    client = app.test_client()
    resp = client.post(
        "/api/v1/bundles", headers=H, json={"title": "T", "catalogs": [{"name": "c", "rows": [{"id": 2**53 + 1}]}]}
    )
    assert resp.status_code == 201, resp.get_json()
    return client, resp.get_json()


def _capability_urls(doc: dict) -> dict[str, str]:
    links = doc["links"]
    files = links["files"].removeprefix("http://localhost")
    return {
        "files": files + "catalogs/c.parquet",  # stored, not deflated: ranges apply
        "notebook": links["notebook"].removeprefix("http://localhost"),
        "download": links["download"].removeprefix("http://localhost"),
        "landing": links["landing"].removeprefix("http://localhost"),
    }


def test_capability_urls_are_no_store(handle) -> None:
    client, doc = handle
    for what, url in _capability_urls(doc).items():
        resp = client.get(url)
        assert resp.status_code == 200, (what, resp.status_code)
        assert resp.headers["Cache-Control"] == "private, no-store", what
        resp.close()
    info = client.get(doc["links"]["git"].removeprefix("http://localhost") + "/info/refs?service=git-upload-pack")
    assert info.status_code == 200 and info.headers["Cache-Control"] == "private, no-store"


@pytest.mark.parametrize(
    ("header", "status", "content_range"),
    [
        # A number too long for int() makes the header malformed: ignored (RFC 9110 lets a server), never a 500.
        (f"bytes={HUGE}-", 200, None),
        (f"bytes=0-{HUGE}", 200, None),
        (f"bytes=-{HUGE}", 200, None),
        (f"bytes={HUGE}-{HUGE}", 200, None),
        ("bytes=٣-٤", 200, None),  # Arabic-Indic digits, which int() would take
        ("bytes=1-2", 206, "bytes 1-2/{n}"),
        ("bytes=99999999-", 416, "bytes */{n}"),
    ],
)
def test_range_headers_never_give_a_500(handle, header: str, status: int, content_range: str | None) -> None:
    client, doc = handle
    for what, url in _capability_urls(doc).items():
        if what not in ("files", "download"):
            continue
        whole = client.get(url).get_data()
        resp = client.get(url, headers={"Range": header})
        assert resp.status_code == status, (what, resp.status_code, resp.get_data()[:200])
        n, last = len(whole), len(whole) - 1
        if content_range is None:
            assert "Content-Range" not in resp.headers and resp.get_data() == whole
        else:
            assert resp.headers["Content-Range"] == content_range.format(n=n, last=last)
        if status == 206:
            lo, hi = (int(x) for x in resp.headers["Content-Range"].split(" ")[1].split("/")[0].split("-"))
            assert resp.get_data() == whole[lo : hi + 1]
    api = client.get(f"/api/v1/bundles/{doc['id']}/download", headers={**H, "Range": f"bytes={HUGE}-"})
    assert api.status_code == 200


class _Untouchable(io.RawIOBase):
    """A request body that fails the test if a single byte of it is read."""

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[no-untyped-def]
        raise AssertionError("the body was read before the credential was checked")


@pytest.mark.parametrize("chunked", [False, True])
def test_no_body_byte_is_read_before_the_credential(handle, chunked: bool) -> None:
    client, doc = handle
    bid = doc["id"]
    length = {"HTTP_TRANSFER_ENCODING": "chunked"} if chunked else {"CONTENT_LENGTH": str(7 << 20)}
    cases = [
        ("/api/v1/bundles", {}, 401, "application/json"),
        ("/api/v1/bundles", {"X-API-Key": "bogus"}, 401, "application/zip"),
        ("/api/v1/bundles", {}, 401, "multipart/form-data; boundary=x"),
        (f"/api/v1/bundles/{bid}/returns", {}, 403, "application/zip"),
        (f"/api/v1/bundles/{bid}/returns", {"Authorization": "Bearer bogus"}, 403, "application/zip"),
        (f"/api/v1/bundles/{bid}/returns/blobs", {"Authorization": "Bearer x.y"}, 403, "application/json"),
        (f"/git/bogus/{bid}.git/git-upload-pack", {}, 403, "application/x-git-upload-pack-request"),
    ]
    for path, auth, status, ctype in cases:
        resp = client.post(
            path,
            headers={**auth, "Content-Type": ctype},
            environ_overrides={**length, "wsgi.input": _Untouchable()},
        )
        body = check_response(resp) if path.startswith("/api/") else resp.get_json()
        assert resp.status_code == status, (path, resp.status_code, body)
        assert body["error"] in ("unauthorized", "token_missing", "token_invalid", "forbidden"), body
    patch = client.patch(
        f"/api/v1/bundles/{bid}",
        headers={"Content-Type": "application/json"},
        environ_overrides={**length, "wsgi.input": _Untouchable()},
    )
    assert patch.status_code == 401
