"""The runtime's return upload tries again when the service's answer is cut off mid-way (a replica killed while
answering), as it does for a refused or reset connection: the upload is idempotent by return id."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from nbpack.runtime.nbpack_runtime.sending import _post_zip
from tests.helpers import serving


class _CutOnce(BaseHTTPRequestHandler):
    posts: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).posts.append(body)
        answer = json.dumps({"id": "r-" + "0" * 24, "created": True}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        if len(type(self).posts) == 1:
            self.close_connection = True  # the headers went out, the body never does: IncompleteRead
            return
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _CutOnce.posts = []
    with serving(_CutOnce) as url:
        yield f"{url}/api/v1/bundles/h-x/returns"


def test_an_answer_cut_off_is_sent_again(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBPACK_RETRY_DELAY", "0.01")
    path = tmp_path / "return.zip"
    path.write_bytes(b"PK-not-checked-here")
    answer = _post_zip(path, {"token": "t", "endpoint": server}, "refused")
    assert answer["id"] == "r-" + "0" * 24
    assert _CutOnce.posts == [b"PK-not-checked-here"] * 2
