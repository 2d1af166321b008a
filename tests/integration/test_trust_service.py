"""Issue 20 against the real service (gunicorn): unauthenticated bodies cost a worker no memory and never hang the
client that sends them."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.fixtures.service import gunicorn_rss_kib, service_env

KEY = "trust-key-" + "x" * 20
BODY = 7 << 20
CHUNK = 64 << 10


def _send_chunked(port: int, path: str, headers: dict[str, str], deadline: float) -> tuple[int, dict, int]:
    """POST ``BODY`` bytes chunked, reading the answer as soon as the server sends one (as curl does); the status,
    the JSON body and how many body bytes were sent. Bounded by ``deadline``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sent, answer = 0, b""
    try:
        sock.sendall(head.encode())
        block = f"{CHUNK:x}\r\n".encode() + b"{" * CHUNK + b"\r\n"
        while sent < BODY and time.monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break  # the server answered before taking the body: stop sending
            try:
                sock.sendall(block)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += CHUNK
        else:
            if sent >= BODY:
                sock.sendall(b"0\r\n\r\n")
        while time.monotonic() < deadline and b"\r\n\r\n" not in answer:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
        # The rest of a small JSON body, if it came in a later segment.
        head_end = answer.find(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in answer[:head_end].split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        while len(answer) < head_end + 4 + length and time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    finally:
        sock.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    body = json.loads(answer[head_end + 4 :]) if status and length else {}
    return status, body, sent


def test_unauthenticated_chunked_bodies_cost_no_memory(start_service, tmp_path: Path) -> None:
    svc = start_service(service_env(str(tmp_path / "store"), KEY, cache_dir=str(tmp_path / "cache")), threads=8)
    bid = "h-" + "0" * 24
    cases = [
        ("/api/v1/bundles", {"Content-Type": "application/json"}, 401),
        ("/api/v1/bundles", {"Content-Type": "application/json", "X-API-Key": "bogus"}, 401),
        ("/api/v1/bundles", {"Content-Type": "application/zip", "Authorization": "Bearer bogus"}, 401),
        ("/api/v1/bundles", {"Content-Type": "multipart/form-data; boundary=b"}, 401),
        (f"/api/v1/bundles/{bid}/returns", {"Content-Type": "application/zip"}, 403),
        (f"/api/v1/bundles/{bid}/returns", {"Content-Type": "application/zip", "Authorization": "Bearer a.b"}, 403),
        (
            f"/api/v1/bundles/{bid}/returns/blobs",
            {"Content-Type": "application/json", "Authorization": "Bearer a"},
            403,
        ),
        (f"/git/bogus/{bid}.git/git-upload-pack", {"Content-Type": "application/x-git-upload-pack-request"}, 403),
    ]
    # Warm the worker (imports, first request) so the baseline is its steady state.
    for _ in range(3):
        _send_chunked(svc.port, "/api/v1/bundles", {"Content-Type": "application/json"}, time.monotonic() + 30)
    base = gunicorn_rss_kib(svc.proc.pid, include_master=False)
    peak, stop = [base], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak.append(gunicorn_rss_kib(svc.proc.pid, include_master=False))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(len(cases)) as pool:
            results = list(pool.map(lambda c: _send_chunked(svc.port, c[0], c[1], started + 60), cases))
    finally:
        stop.set()
        sampler.join(5)
    took = time.monotonic() - started
    for (path, _, status), (got, body, sent) in zip(cases, results, strict=True):
        assert got == status, (path, got, body, svc.log_tail())
        assert body.get("error"), body
        assert sent < BODY, f"{path}: the whole body went up before the refusal ({sent} bytes)"
    growth_mib = (max(peak) - base) / 1024
    print(f"\nworker RSS {base / 1024:.1f} MiB, peak +{growth_mib:.1f} MiB over {len(peak)} samples; {took:.2f}s")
    # 8 bodies of 7 MiB read whole would be +56 MiB at least (+105 MiB was seen); unread, a few MiB of buffers.
    assert growth_mib < 16, f"worker RSS grew {growth_mib:.1f} MiB"
    assert took < 60
    assert "Traceback" not in svc.log_path.read_text()
