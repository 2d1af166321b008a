"""Where the runtime sends tokens: real https servers on 127.0.0.1 (trustme certificates) that redirect and record the
Authorization headers they receive; the Rucio host from the environment only; checksums checked before any path."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import trustme

from tests.helpers import load_runtime_package

DATA = b"spectrum bytes\n" * 100
TOKEN = "wlcg-secret-token"


def _runtime() -> ModuleType:
    return load_runtime_package("nbpack_runtime_under_test")


class Recorder:
    """One server: answers each path from ``routes`` (status, headers, body) and records what it was sent."""

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.seen: list[tuple[str, str | None]] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                recorder.seen.append((self.path, self.headers.get("Authorization")))
                status, headers, body = recorder.routes.get(self.path, (404, {}, b"no"))
                self.send_response(status)
                for k, v in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Recorder]]:
    """Two https servers and one plain http server on 127.0.0.1, trusted through SSL_CERT_FILE."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(tls)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    monkeypatch.setenv("NBPACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NBPACK_RETRY_DELAY", "0.01")
    monkeypatch.setenv("BEARER_TOKEN", TOKEN)
    for var in ("NBPACK_BEARER_HOSTS", "RUCIO_HOST", "RUCIO_ACCESS_TOKEN", "RUCIO_TOKEN_FILE", "BEARER_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    started = [Recorder(tls), Recorder(tls), Recorder(None)]
    yield started
    for s in started:
        s.close()


def _bundle(rt: ModuleType, root: Path, uri: str, **extra: object) -> object:
    entry = {"name": "spec", "uri": uri, "size": len(DATA), "checksums": {"sha256": hashlib.sha256(DATA).hexdigest()}}
    entry.update(extra)
    return rt.Bundle(root, {"id": "b-" + "0" * 24, "title": "t", "files": [entry]})


def test_bearer_token_only_to_allowed_https_hosts(
    servers: list[Recorder], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _, _ = servers
    a.routes["/f"] = (200, {}, DATA)
    rt = _runtime()
    # Not on the hub's list: the davs file is fetched without the token.
    assert _bundle(rt, tmp_path, f"davs://127.0.0.1:{a.port}/f").file("spec").read_bytes() == DATA
    assert a.seen == [("/f", None)]
    # On the list (host:port): the token goes with it.
    monkeypatch.setenv("NBPACK_BEARER_HOSTS", f"example.org, 127.0.0.1:{a.port}")
    rt = _runtime()
    monkeypatch.setenv("NBPACK_CACHE", str(tmp_path / "cache2"))
    assert _bundle(rt, tmp_path, f"davs://127.0.0.1:{a.port}/f").file("spec").read_bytes() == DATA
    assert a.seen[-1] == ("/f", f"Bearer {TOKEN}")
    # Plain dav:// to the same allowed host, even with allow_http: never a token over http.
    assert rt.fetch._bearer_header(f"http://127.0.0.1:{a.port}/f") == {}


def test_token_not_forwarded_across_hosts_and_no_https_to_http(
    servers: list[Recorder], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, plain = servers
    monkeypatch.setenv("NBPACK_BEARER_HOSTS", f"127.0.0.1:{a.port}")
    a.routes["/moved"] = (302, {"Location": f"{b.base}/f"}, b"")
    a.routes["/same"] = (302, {"Location": "/f"}, b"")
    a.routes["/f"] = (200, {}, DATA)
    a.routes["/down"] = (302, {"Location": f"{plain.base}/f"}, b"")
    b.routes["/f"] = (200, {}, DATA)
    plain.routes["/f"] = (200, {}, DATA)
    rt = _runtime()

    assert _bundle(rt, tmp_path, f"davs://127.0.0.1:{a.port}/moved").file("spec").read_bytes() == DATA
    assert a.seen == [("/moved", f"Bearer {TOKEN}")]
    assert b.seen == [("/f", None)], "the token never reaches the other server"

    monkeypatch.setenv("NBPACK_CACHE", str(tmp_path / "cache-same"))
    assert _bundle(rt, tmp_path, f"{a.base}/same").file("spec").read_bytes() == DATA
    assert a.seen[-2:] == [("/same", f"Bearer {TOKEN}"), ("/f", f"Bearer {TOKEN}")]

    monkeypatch.setenv("NBPACK_CACHE", str(tmp_path / "cache-down"))
    with pytest.raises(rt.FetchError, match="leaving https is refused"):
        _bundle(rt, tmp_path, f"{a.base}/down", options={"allow_http": True}).file("spec")
    assert plain.seen == [], "the http server got no request at all"


def test_rucio_host_comes_from_the_environment_only(
    servers: list[Recorder], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evil, _, _ = servers
    monkeypatch.setenv("RUCIO_ACCESS_TOKEN", "rucio-secret")
    rt = _runtime()
    manifest = {
        "id": "b-" + "0" * 24,
        "title": "t",
        "results": {"rucio": {"host": evil.base}},
        "files": [{"name": "d", "uri": "escape:file1", "checksums": {}}],
    }
    with pytest.raises(rt.FetchError, match="RUCIO_HOST"):
        rt.Bundle(tmp_path, manifest).file("d")
    assert evil.seen == [], "the manifest's Rucio host never hears of the token"
    assert rt.rucio.rucio_host() is None
    monkeypatch.setenv("RUCIO_HOST", "https://rucio.example")
    assert rt.rucio.rucio_host() == "https://rucio.example"


@pytest.mark.parametrize(
    "alg,value", [("md5", "../../x"), ("sha256", "../" * 21 + "a"), ("adler32", "ABCDEFG"), ("md5", "0" * 31 + "/")]
)
def test_checksum_values_checked_before_any_path(servers: list[Recorder], tmp_path: Path, alg: str, value: str) -> None:
    rt = _runtime()
    # A file where the traversal would land: bundle.file() must never hand it back.
    with contextlib.suppress(OSError):
        target = (rt.cache_dir() / alg / value).parent / "f"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"local secret")
    b = rt.Bundle(
        tmp_path,
        {
            "id": "b-" + "0" * 24,
            "title": "t",
            "files": [{"name": "spec", "uri": "https://127.0.0.1:1/f", "checksums": {alg: value}}],
        },
    )
    with pytest.raises(rt.ChecksumMismatch, match=f"{alg} is not .* hex digits"):
        b.file("spec")
