"""Kept-alive connections of signed range reads (``nbpack_runtime.keepalive`` through ``ranges.open_range``), against
a real HTTP/1.1 server on 127.0.0.1 that counts the connections it accepts. The lazy read over SeaweedFS:
tests/integration/test_signed_reads.py."""

from __future__ import annotations

import concurrent.futures
import http.server
import os
import re
import threading
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.helpers import load_runtime_package, unload_runtime

DATA = os.urandom(300_000)


class _Server:
    """HTTP/1.1 on 127.0.0.1: ``/data`` answers Range requests of DATA (206); ``/moved`` a 302 to ``/data``;
    ``/once`` a 206 after which the server closes the connection without saying so (as at a keep-alive timeout)."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[str] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with outer.lock:
                    outer.connections += 1

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                with outer.lock:
                    outer.requests.append(self.path)
                if self.path.startswith("/moved"):
                    self.send_response(302)
                    self.send_header("Location", "/data")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                match = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
                assert match, self.headers
                start, end = int(match.group(1)), int(match.group(2))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(DATA)}")
                self.send_header("Content-Length", str(end - start + 1))
                self.end_headers()
                self.wfile.write(DATA[start : end + 1])
                if self.path.startswith("/once"):
                    self.close_connection = True  # and no "Connection: close": the client learns it on its next use

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.thread = threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def rt(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NBPACK_RETRY_DELAY", "0.01")
    yield load_runtime_package("nbpack_runtime_keepalive_unit")
    unload_runtime("nbpack_runtime_keepalive_unit")


@pytest.fixture
def server(rt: ModuleType) -> Iterator[_Server]:
    srv = _Server()
    yield srv
    rt.keepalive.close_all()
    srv.stop()


def _read(rt: ModuleType, url: str, start: int, end: int) -> bytes:
    resp, at = rt.ranges.open_range(url, start, end, len(DATA), keep=True)
    assert at == start
    with resp:
        return rt.ranges.read_exactly(resp, end - start + 1)


def test_ranges_one_after_another_share_one_connection(rt: ModuleType, server: _Server) -> None:
    for start in range(0, 200_000, 50_000):
        assert _read(rt, server.url + "/data?X-Amz-Signature=0", start, start + 49_999) == DATA[start : start + 50_000]
    assert len(server.requests) == 4 and server.connections == 1


def test_ranges_at_once_use_one_connection_each_then_reuse_them(rt: ModuleType, server: _Server) -> None:
    spans = [(s, s + 9_999) for s in range(0, 300_000, 10_000)]  # 30 ranges, 4 at a time
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda span: _read(rt, server.url + "/data", *span), spans))
    assert got == [DATA[a : b + 1] for a, b in spans]
    assert server.connections <= 4 and len(server.requests) == 30


def test_without_keep_urllib_still_opens_a_connection_per_range(rt: ModuleType, server: _Server) -> None:
    for start in (0, 1000, 2000):
        resp, _ = rt.ranges.open_range(server.url + "/data", start, start + 999, len(DATA))
        with resp:
            assert rt.ranges.read_exactly(resp, 1000) == DATA[start : start + 1000]
    assert server.connections == 3


def test_a_redirect_on_a_kept_connection_is_refused_and_not_followed(rt: ModuleType, server: _Server) -> None:
    assert _read(rt, server.url + "/data", 0, 999) == DATA[:1000]
    with pytest.raises(rt.FetchError, match="302 \\(a redirect\\): refused") as caught:
        rt.ranges.open_range(server.url + "/moved?X-Amz-Signature=0", 0, 999, len(DATA), keep=True)
    assert caught.value.status == 302
    assert server.requests == ["/data", "/moved?X-Amz-Signature=0"]  # the Location was never asked for
    assert server.connections == 1  # the 302 came on the kept connection


def test_a_connection_the_server_closed_while_idle_is_replaced_at_once(rt: ModuleType, server: _Server) -> None:
    for start in (0, 1000, 2000):
        assert _read(rt, server.url + "/once", start, start + 999) == DATA[start : start + 1000]
    # Each reuse met the closed connection and went once more on a new one: no failure, no retry pause.
    assert server.connections == 3 and len(server.requests) == 3


def test_a_body_left_unread_closes_its_connection(rt: ModuleType, server: _Server) -> None:
    resp, _ = rt.ranges.open_range(server.url + "/data", 0, 99_999, len(DATA), keep=True)
    with resp:
        resp.read(10)  # a reader that stopped early (a checksum mismatch): the rest must not be the next answer
    assert _read(rt, server.url + "/data", 0, 999) == DATA[:1000]
    assert server.connections == 2


def test_an_idle_connection_past_its_time_is_not_reused(rt: ModuleType, server: _Server) -> None:
    _read(rt, server.url + "/data", 0, 999)
    rt.keepalive.IDLE_FOR = 0.0
    _read(rt, server.url + "/data", 0, 999)
    assert server.connections == 2


def test_a_proxy_urllib_would_use_keeps_urllib(rt: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "https://s3.example.org/bucket/key?X-Amz-Signature=0"
    assert rt.keepalive.usable(url)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.org:3128")
    monkeypatch.setenv("https_proxy", "http://proxy.example.org:3128")
    assert not rt.keepalive.usable(url)
    assert rt.keepalive.usable(url.replace("https://", "http://"))  # a proxy for https only
    monkeypatch.setenv("NO_PROXY", "s3.example.org")
    monkeypatch.setenv("no_proxy", "s3.example.org")
    assert rt.keepalive.usable(url)
    assert not rt.keepalive.usable("ftp://s3.example.org/x") and not rt.keepalive.usable("https:///x")
