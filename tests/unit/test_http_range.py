"""server/http.py's Range handling (werkzeug's parser): every header, however long or odd, is a 206, 200 or 416.

Issue 20 found ``Range: bytes=<4301 digits>-`` raised inside ``int()`` (Python's digit limit) and gave a 500.
"""

from __future__ import annotations

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.http import byte_range, stream

BODY = bytes(range(256)) * 4  # 1,024 bytes
HUGE = "9" * 4301  # one digit past CPython's int() limit


def _get(header: str | None) -> tuple[int, bytes, dict[str, str]]:
    app = Flask(__name__)
    headers = {"Range": header} if header is not None else {}
    with app.test_request_context("/", headers=headers):
        resp = stream(len(BODY), lambda a, b: iter([BODY[a : (b or len(BODY) - 1) + 1]]), "b.zip")
        return resp.status_code, b"".join(resp.response), dict(resp.headers)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "status", "body"),
    [
        (None, 200, BODY),
        ("bytes=10-99", 206, BODY[10:100]),
        ("bytes=1000-", 206, BODY[1000:]),
        ("bytes=-7", 206, BODY[-7:]),
        ("bytes=-5000", 206, BODY),  # a suffix longer than the body is the whole body
        ("bytes=10-99999", 206, BODY[10:]),
        ("bytes=1024-", 416, b""),
        (f"bytes={HUGE}-", 200, BODY),  # malformed for int(): the header is ignored
        (f"bytes=-{HUGE}", 200, BODY),
        (f"bytes=0-{HUGE}", 200, BODY),
        ("bytes=5-3", 200, BODY),  # last before first: invalid, ignored
        ("bytes=0-1,5-6", 200, BODY),  # several ranges: the whole body
        ("items=0-1", 200, BODY),
        ("bytes=x-y", 200, BODY),
        ("bytes=\x00-1", 200, BODY),
        ("bytes=", 200, BODY),
    ],
)
def test_range_answers(header: str | None, status: int, body: bytes) -> None:
    got_status, got_body, headers = _get(header)
    assert (got_status, got_body) == (status, body)
    if status == 206:
        start = len(BODY) - len(body) if header and header.startswith("bytes=-") else int(header[6:].split("-")[0])
        assert headers["Content-Range"] == f"bytes {start}-{start + len(body) - 1}/{len(BODY)}"
        assert headers["Content-Length"] == str(len(body))
    if status == 416:
        assert headers["Content-Range"] == f"bytes */{len(BODY)}"


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(st.text(max_size=60), st.from_regex(r"\Abytes=[0-9 ,-]{0,40}\Z"), st.just(f"bytes={HUGE}-")))
def test_any_header_is_a_range_or_ignored(header: str) -> None:
    wanted = byte_range(header, len(BODY))
    if wanted is not None:
        start, end = wanted
        assert (start, end) == (len(BODY), len(BODY)) or 0 <= start <= end < len(BODY)
