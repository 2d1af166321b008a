"""The client and ``nbpack push`` retry creates safely (issue 20): every attempt carries one Idempotency-Key, so a
lost answer or Ctrl-C after the upload never leaves a second handle or an id the user never saw."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from nbpack.client import Client
from tests.fixtures.service import service_env
from tests.helpers import reference_table, serving

KEY = "client-retry-key-0123456789"


class _LosingProxy:
    """A TCP proxy to the service that drops the answer of the first ``lose`` connections (the create happens,
    the client never hears of it), then forwards faithfully."""

    def __init__(self, upstream: int, lose: int = 1) -> None:
        self.upstream, self.lose = upstream, lose
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._pipe, args=(conn, self.connections <= self.lose), daemon=True).start()

    def _pipe(self, client: socket.socket, lose: bool) -> None:
        up = socket.create_connection(("127.0.0.1", self.upstream), timeout=60)

        def forward() -> None:
            try:
                while data := client.recv(65536):
                    up.sendall(data)
            except OSError:
                pass

        threading.Thread(target=forward, daemon=True).start()
        try:
            first = up.recv(65536)  # the service's answer has begun: the create is done
            if lose:
                # and the client never sees it: shutdown first, as a close alone waits for the forwarding thread's
                # recv and the client sat out its whole timeout (60 s per lost answer) before retrying
                client.shutdown(socket.SHUT_RDWR)
                client.close()
                return
            client.sendall(first)
            while data := up.recv(65536):
                client.sendall(data)
        except OSError:
            pass
        finally:
            for s in (client, up):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()


def _ids(url: str) -> list[str]:
    req = urllib.request.Request(url + "/api/v1/bundles", headers={"X-API-Key": KEY})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return [b["id"] for b in json.loads(resp.read())["bundles"]]


def test_a_lost_answer_is_retried_into_the_same_handle(start_service, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NBPACK_RETRY_DELAY", "0.05")
    svc = start_service(service_env(str(tmp_path / "store"), KEY, cache_dir=str(tmp_path / "cache")))
    path = tmp_path / "b.zip"
    build_bundle(BuildSpec(title="Lost answer", catalogs=[CatalogInput("stars", reference_table())]), path)
    proxy = _LosingProxy(svc.port, lose=1)
    try:
        answer = Client(f"http://127.0.0.1:{proxy.port}", KEY, timeout=60).push(path, owner="ada")
        assert proxy.connections == 2  # the lost one and its retry
        assert _ids(svc.url) == [answer["id"]]
        # The JSON create too: two answers lost, the third attempt gets the first handle.
        proxy.lose, proxy.connections = 2, 0
        created = Client(f"http://127.0.0.1:{proxy.port}", KEY, timeout=60).create(
            {"title": "Lost JSON", "catalogs": [{"name": "c", "rows": [{"id": 2**53 + 1}]}]}
        )
        assert proxy.connections == 3
        assert sorted(_ids(svc.url)) == sorted([answer["id"], created["id"]])
    finally:
        proxy.close()


class _SlowCreate(http.server.BaseHTTPRequestHandler):
    """A service stand-in: the first create reads its whole body, then answers only after a long time (the user
    presses Ctrl-C meanwhile); a create with a key seen before answers at once with the handle made for it."""

    keys: list[str] = []
    bodies: list[int] = []
    body_in = threading.Event()

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        key = self.headers["Idempotency-Key"]
        self.bodies.append(len(self.rfile.read(int(self.headers["Content-Length"]))))
        first = key not in self.keys
        self.keys.append(key)
        if first:
            self.body_in.set()
            time.sleep(30)
        doc = json.dumps({"id": "h-" + "a" * 24, "links": {"landing": "http://x/b/h-aaa"}}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(doc)))
        self.end_headers()
        self.wfile.write(doc)

    def log_message(self, *args: object) -> None:
        pass


def test_ctrl_c_after_the_upload_still_prints_the_id(tmp_path: Path) -> None:
    path = tmp_path / "b.zip"
    build_bundle(BuildSpec(title="Interrupted", catalogs=[CatalogInput("stars", reference_table())]), path)
    with serving(_SlowCreate) as base:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "nbpack"),
                "push",
                str(path),
                "--server",
                base,
            ],
            env={**os.environ, "NBPACK_API_KEY": KEY},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert _SlowCreate.body_in.wait(60), "the push never reached the stand-in"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "interrupted after the upload" in err
    assert "stored as h-" + "a" * 24 in out
    # Two requests, one key, the whole body each time: the service can tell the retry from a new create.
    assert len(_SlowCreate.keys) == 2 and len(set(_SlowCreate.keys)) == 1
    assert _SlowCreate.bodies == [path.stat().st_size] * 2
