"""A plain HTTP file server for tests of the runtime's downloads: Range requests, and a log of what it served.

Files are set per path (``serve``) and can be swapped while it runs, to test corrupted or changed data.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass
class ServerLog:
    """What the server saw: request paths, Range headers and bytes served per path."""

    requests: list[str] = field(default_factory=list)
    ranges: list[str | None] = field(default_factory=list)
    bytes_served: dict[str, int] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        srv = self.server
        path = unquote(urlsplit(self.path).path)
        with srv.lock:
            srv.log.requests.append(path)
            srv.log.ranges.append(self.headers.get("Range"))
            blob = srv.blobs.get(path)
        if blob is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[len("bytes=") : -1])
            if start >= len(blob):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(blob)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(blob) - 1}/{len(blob)}")
        else:
            self.send_response(200)
        body = blob[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(body)
        with srv.lock:
            srv.log.bytes_served[path] = srv.log.bytes_served.get(path, 0) + len(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.log = ServerLog()
        self.blobs: dict[str, bytes] = {}


class BlobServer:
    """Threaded Range-capable file server on 127.0.0.1 (a free port)."""

    def __init__(self) -> None:
        self._srv = _Server()
        self._thread = threading.Thread(target=self._srv.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT``."""
        host, port = self._srv.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def log(self) -> ServerLog:
        """Requests and bytes served so far."""
        return self._srv.log

    def serve(self, path: str, blob: bytes) -> str:
        """Serve ``blob`` at ``path``; returns its URL."""
        with self._srv.lock:
            self._srv.blobs[path] = blob
        return self.url + path

    def __enter__(self) -> BlobServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(timeout=5)
