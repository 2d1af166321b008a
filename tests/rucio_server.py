"""A small Rucio-shaped HTTP server for tests: ``GET /replicas/{scope}/{name}`` plus the replicas' bytes.

It answers the way Rucio's REST API does (``application/x-json-stream``: one JSON object per line with
``scope, name, bytes, adler32, md5, rses {rse: [pfn]}, pfns {pfn: {rse, type, domain, priority, ...}}``),
checks the token (``X-Rucio-Auth-Token`` as Rucio does, or ``Authorization: Bearer``), and serves each
replica's bytes at ``/rse/<RSE>/<scope>/<name>`` with Range support. It also counts bytes served per path.
"""

from __future__ import annotations

import hashlib
import json
import threading
import zlib
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
        if path.startswith("/replicas/"):
            self._replicas(path)
        elif path in srv.blobs:
            self._blob(path, srv.blobs[path])
        else:
            self._json(404, {"ExceptionClass": "NotFound", "ExceptionMessage": f"{path} not found"})

    def _authorized(self) -> bool:
        token = self.headers.get("X-Rucio-Auth-Token")
        auth = self.headers.get("Authorization", "")
        if not token and auth.startswith("Bearer "):
            token = auth[len("Bearer "):]
        return token == self.server.token

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _replicas(self, path: str) -> None:
        if not self._authorized():
            self._json(401, {"ExceptionClass": "CannotAuthenticate", "ExceptionMessage": "Cannot authenticate"})
            return
        parts = path.strip("/").split("/")
        if len(parts) != 3:
            self._json(400, {"ExceptionClass": "ValueError", "ExceptionMessage": "bad DID"})
            return
        did = f"{parts[1]}:{parts[2]}"
        record = self.server.records.get(did)
        if record is None:
            self._json(404, {"ExceptionClass": "DataIdentifierNotFound",
                             "ExceptionMessage": f"Data identifier '{did}' not found"})
            return
        data = (json.dumps(record) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-json-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _blob(self, path: str, blob: bytes) -> None:
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[len("bytes="):-1])
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
        with self.server.lock:
            self.server.log.bytes_served[path] = self.server.log.bytes_served.get(path, 0) + len(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, token: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.token = token
        self.lock = threading.Lock()
        self.log = ServerLog()
        self.blobs: dict[str, bytes] = {}
        self.records: dict[str, dict] = {}


class RucioServer:
    """Threaded Rucio-shaped server on 127.0.0.1 (free port); also a plain Range-capable file server."""

    def __init__(self, token: str = "test-token") -> None:
        self._srv = _Server(token)
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
        """Serve ``blob`` at ``path`` (no token needed); returns its URL."""
        self._srv.blobs[path] = blob
        return self.url + path

    def add_file(self, scope: str, name: str, blob: bytes, rses: list[str], *, adler32: str | None = None) -> None:
        """Register a file DID with one replica per RSE (listed with rising priority number)."""
        record: dict = {
            "scope": scope, "name": name, "bytes": len(blob),
            "adler32": adler32 or f"{zlib.adler32(blob, 1) & 0xFFFFFFFF:08x}",
            "md5": hashlib.md5(blob).hexdigest(), "rses": {}, "pfns": {}, "states": {},
        }
        for priority, rse in enumerate(rses, start=1):
            pfn = self.serve(f"/rse/{rse}/{scope}/{name}", blob)
            record["rses"][rse] = [pfn]
            record["states"][rse] = "AVAILABLE"
            record["pfns"][pfn] = {"rse": rse, "rse_id": hashlib.md5(rse.encode()).hexdigest(), "type": "DISK",
                                   "volatile": False, "domain": "wan", "priority": priority,
                                   "client_extract": False}
        self._srv.records[f"{scope}:{name}"] = record

    def __enter__(self) -> RucioServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(timeout=5)
