"""Helpers of the lazy-read tests: awkward catalogs, a thin copy of a bundle, a byte-counting TCP proxy."""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import shutil
import socket
import socketserver
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tests.helpers import serving

REMOTE_FILE = "nbpack.remote.json"


def awkward_catalog(rows: int, columns: int = 22, seed: int = 0) -> pa.Table:
    """``columns`` columns, random (so blocks do not compress away): int64 ids above 2^53, NaN beside null,
    tz-aware times, unicode strings with commas, then float64 columns."""
    rng = np.random.default_rng(seed)
    ids = (1 << 53) + 1 + rng.integers(0, 1 << 40, rows, dtype=np.int64) * 2 + 1  # odd: not exact as float64
    mag = rng.normal(17, 2, rows)
    mag[::7] = np.nan
    mag_mask = np.zeros(rows, bool)
    mag_mask[3::11] = True  # nulls beside NaNs
    start = datetime(2026, 1, 1, tzinfo=UTC)
    times = [start + timedelta(microseconds=int(x)) for x in rng.integers(0, 10**12, rows)]
    words = ["α,β", "étoile, brillante", "plain", "a,b,c", "Zürich", "東京,大阪"]
    names = [f"{words[i % len(words)]} #{i}" for i in range(rows)]
    data: dict[str, pa.Array] = {
        "source_id": pa.array(ids, pa.int64()),
        "mag": pa.array(mag, pa.float64(), mask=mag_mask),
        "epoch": pa.array(times, pa.timestamp("us", tz="UTC")),
        "name": pa.array(names, pa.string()),
    }
    for i in range(columns - len(data)):
        data[f"x{i:02d}"] = pa.array(rng.random(rows), pa.float64())
    return pa.table(data)


def same(a: pa.Table, b: pa.Table) -> bool:
    """Equal tables, schema metadata included, a NaN equal to a NaN in the same place (Arrow's ``equals`` says no)."""
    if not a.schema.equals(b.schema, check_metadata=True) or a.num_rows != b.num_rows:
        return False
    for x, y in zip(a.columns, b.columns, strict=True):
        if pa.types.is_floating(x.type):
            x, y = (pc.if_else(pc.is_nan(c), pa.scalar(-1.5e300, c.type), c) for c in (x, y))
        if not x.equals(y):
            return False
    return True


def thin_copy(full: Path, dest: Path, files_url: str, leave_out: list[str]) -> Path:
    """A copy of an unpacked bundle without ``leave_out`` members, with ``nbpack.remote.json`` (IFACE §3)."""
    shutil.copytree(full, dest)
    for rel in leave_out:
        (dest / rel).unlink()
    (dest / REMOTE_FILE).write_text(json.dumps({"files": files_url, "lazy": leave_out}), "utf-8")
    return dest


class CountingProxy:
    """A TCP proxy on 127.0.0.1 in front of ``upstream``: counts connections, the most open at once (``peak``) and
    bytes sent back to the client.

    ``cut_after``: after that many bytes sent back in all, every connection is closed and new ones are closed at
    once (a network that fails mid-read and stays down); ``reset()`` restores it.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.connections = 0
        self.active = 0
        self.peak = 0
        self.bytes = 0
        self.cut_after: int | None = None
        # While ``record`` is set, what clients send upstream is kept in ``sent`` (a request log, to search).
        self.record = False
        self.sent = bytearray()
        self.lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._pump(self.request)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def reset(self) -> None:
        with self.lock:
            self.connections, self.bytes, self.cut_after, self.peak = 0, 0, None, 0
            self.sent = bytearray()

    def _cut(self) -> bool:
        return self.cut_after is not None and self.bytes >= self.cut_after

    def _pump(self, client: socket.socket) -> None:
        with self.lock:
            self.connections += 1
            if self._cut():
                client.close()
                return
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            self._pump_open(client)
        finally:
            with self.lock:
                self.active -= 1

    def _pump_open(self, client: socket.socket) -> None:
        up = socket.create_connection(self.upstream, timeout=30)
        done = threading.Event()

        def forward() -> None:  # client → upstream
            try:
                while data := client.recv(65536):
                    if self.record:
                        with self.lock:
                            self.sent += data
                    up.sendall(data)
            except OSError:
                pass
            # The client is done sending: pass that on, so an upstream that keeps connections alive closes its side
            # and the pump below ends (else it would wait for the upstream's idle timeout).
            with contextlib.suppress(OSError):
                up.shutdown(socket.SHUT_WR)
            done.set()

        threading.Thread(target=forward, daemon=True).start()
        try:
            while data := up.recv(65536):
                with self.lock:
                    if self.cut_after is not None:
                        data = data[: max(0, self.cut_after - self.bytes)]
                    self.bytes += len(data)
                if data:
                    client.sendall(data)
                if self._cut():
                    break
        except OSError:
            pass
        finally:
            for s in (up, client):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def __enter__(self) -> CountingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@contextlib.contextmanager
def redirect_server(location: str) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering every GET with 302 to ``location`` + the path; yields its base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(302)
            self.send_header("Location", location + self.path.lstrip("/"))
            self.send_header("Content-Length", "0")
            self.end_headers()

    with serving(Handler) as base:
        yield f"{base}/"


@contextlib.contextmanager
def range_server(folder: Path, keep_alive: bool = False) -> Iterator[str]:
    """Serve ``folder`` at ``/files/tok/hid/<path>`` with single ``Range`` requests (206); yields the files prefix.
    HTTP/1.0 (a connection per request) unless ``keep_alive``: HTTP/1.1, connections kept between requests.

    Stands in for the service's files endpoint in the fast tests; tests/integration/test_lazy_service.py uses the real
    one.
    """

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.endswith("?signed=1"):
                # As the service on a local folder: no signed read to give, read the files URL.
                body = b'{"error": "signed_read_unavailable", "message": "read it here"}'
                self.send_response(409)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            rel = self.path.removeprefix("/files/tok/hid/")
            path = folder / rel
            if rel == self.path or ".." in rel.split("/") or not path.is_file():
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = path.read_bytes()
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if match:
                start = int(match.group(1))
                end = min(int(match.group(2)), len(data) - 1) if match.group(2) else len(data) - 1
                body = data[start : end + 1]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            else:
                body = data
                self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(Handler) as base:
        yield f"{base}/files/tok/hid/"
