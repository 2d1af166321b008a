"""server/guard.py: a request with a body shows its credential before one byte of the body is read, and what a
token URL answers is never cached."""

# ruff: noqa: F811 - the tests take the imported fixtures (app, client, bundle) as arguments of the same names
from __future__ import annotations

import io

from flask.testing import FlaskClient

from tests.api_helpers import H, app, bundle, client, token_of  # noqa: F401 - fixtures: the module-wide app and its bundle


class Untouchable(io.RawIOBase):
    """A 1 GiB request body that counts the reads of it (werkzeug's test client seeks it to learn its length)."""

    SIZE = 1 << 30

    def __init__(self) -> None:
        self.reads = 0
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else self.SIZE + offset if whence == 2 else self.pos + offset
        return self.pos

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        self.reads += 1
        buf[:1] = b"x"
        return 1


def _post(client: FlaskClient, path: str, headers: dict[str, str]) -> tuple[int, dict, int]:
    body = Untouchable()
    resp = client.post(path, input_stream=body, headers=headers)
    return resp.status_code, resp.get_json(), body.reads


def test_a_create_without_a_key_is_refused_unread(client: FlaskClient) -> None:
    status, doc, reads = _post(client, "/api/v1/bundles", {"Content-Type": "application/json"})
    assert (status, doc["error"], reads) == (401, "unauthorized", 0)
    status, doc, reads = _post(client, "/api/v1/bundles", {"X-API-Key": "wrong"})
    assert (status, reads) == (401, 0)


def test_a_return_upload_with_another_bundles_or_no_token_is_refused_unread(client: FlaskClient, bundle: dict) -> None:
    status, doc, reads = _post(client, f"/api/v1/bundles/{bundle['id']}/returns", {"Authorization": "Bearer x.y"})
    assert (status, reads) == (403, 0) and doc["error"].startswith("token_")
    status, doc, reads = _post(client, f"/api/v1/bundles/{bundle['id']}/returns", {})
    assert (status, reads) == (403, 0) and doc["error"] == "token_missing"
    # The read token of the landing page is not a return token either.
    read = token_of(bundle["links"]["landing"])
    status, doc, reads = _post(client, f"/api/v1/bundles/{bundle['id']}/returns?t={read}", {})
    assert (status, reads) == (403, 0) and doc["error"] == "token_scope"


def test_token_urls_are_never_cached(client: FlaskClient, bundle: dict) -> None:
    landing = client.get(bundle["links"]["landing"].removeprefix("http://localhost"))
    assert landing.status_code == 200 and landing.headers["Cache-Control"] == "private, no-store"
    listing = client.get("/api/v1/bundles", headers=H)
    assert listing.status_code == 200 and "no-store" not in listing.headers.get("Cache-Control", "")
