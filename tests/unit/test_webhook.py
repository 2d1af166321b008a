"""Webhook signing and delivery against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nbpack.errors import InvalidInput
from nbpack.webhooks.delivery import deliver, deliver_async, sign, verify

SECRET = "s3cret-shared-with-esap"

# Copied literally from docs/esap.md; test_doc_snippet_is_current keeps the two identical.
DOC_SNIPPET = """\
import hashlib, hmac, time

def verify_nbpack(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        t = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - t) > tolerance:  # refuse replays of old deliveries
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields.get("v1", ""))
"""
_ns: dict = {}
exec(DOC_SNIPPET, _ns)
verify_nbpack = _ns["verify_nbpack"]


def test_doc_snippet_is_current() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "esap.md").read_text()
    assert DOC_SNIPPET in doc


class Receiver:
    """A webhook endpoint answering a scripted sequence of statuses (the last one repeats)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.calls: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sig = self.headers.get("X-Nbpack-Signature", "")
                receiver.calls.append(
                    {
                        "body": body,
                        "headers": dict(self.headers),
                        "verified": verify_nbpack(SECRET, body, sig),
                    }
                )
                index = min(len(receiver.calls), len(receiver.statuses)) - 1
                status = receiver.statuses[index]
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/esap-api/nbpack/notify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory() -> Iterator:
    made: list[Receiver] = []

    def make(statuses: list[int]) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.close()


def test_sign_verify_roundtrip_and_refusals() -> None:
    body = b'{"bundle_id":"b-0123456789abcdef01234567"}'
    now = int(time.time())
    header = sign(SECRET, body, now)
    assert header.startswith(f"t={now},v1=")
    assert verify(SECRET, body, header, now=now)
    assert verify_nbpack(SECRET, body, header)
    # tampered body, wrong secret, stale and future timestamps
    assert not verify(SECRET, body + b" ", header, now=now)
    assert not verify_nbpack(SECRET, body.replace(b"0123", b"9999"), header)
    assert not verify("other-secret", body, header, now=now)
    assert not verify_nbpack("other-secret", body, header)
    stale = sign(SECRET, body, now - 301)
    assert not verify(SECRET, body, stale, now=now)
    assert not verify_nbpack(SECRET, body, stale)
    assert not verify(SECRET, body, sign(SECRET, body, now + 301), now=now)
    assert verify(SECRET, body, stale, now=now, tolerance=600)
    for garbled in ["", "v1=abc", f"t=x,v1={header.split('v1=')[1]}", f"t={now}"]:
        assert not verify(SECRET, body, garbled, now=now)
        assert not verify_nbpack(SECRET, body, garbled)


def test_retries_5xx_then_succeeds_with_same_delivery_id(receiver_factory) -> None:
    rx = receiver_factory([500, 500, 200])
    payload = {"event": "return.created", "bundle_id": "b-" + "a" * 24, "return_id": "r-" + "b" * 24}
    result = deliver(rx.url, payload, SECRET, backoff=0.05)
    assert result.ok and result.status == 200 and result.attempts == 3
    assert len(rx.calls) == 3
    assert all(c["verified"] for c in rx.calls)
    ids = {c["headers"]["X-Nbpack-Delivery"] for c in rx.calls}
    assert ids == {result.delivery_id}
    first = rx.calls[0]
    assert first["headers"]["Content-Type"] == "application/json"
    assert first["headers"]["X-Nbpack-Event"] == "return.created"
    assert json.loads(first["body"]) == payload


def test_client_error_is_final(receiver_factory) -> None:
    rx = receiver_factory([400])
    result = deliver(rx.url, {"event": "return.created"}, SECRET, backoff=0.05)
    assert not result.ok and result.status == 400 and result.attempts == 1
    assert len(rx.calls) == 1


def test_always_failing_receiver_is_bounded(receiver_factory) -> None:
    rx = receiver_factory([503])
    result = deliver(rx.url, {"x": 1}, SECRET, attempts=3, backoff=0.02)
    assert not result.ok and result.status == 503 and result.attempts == 3
    assert len(rx.calls) == 3


def test_closed_port_fails_within_bounded_time() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    result = deliver(f"http://127.0.0.1:{port}/hook", {"x": 1}, SECRET, attempts=4, backoff=0.05, timeout=2)
    elapsed = time.monotonic() - started
    assert not result.ok and result.status is None and result.attempts == 4
    assert result.error and "refused" in result.error.lower()
    assert elapsed < 5


def test_refuses_non_http_urls() -> None:
    for url in ["file:///etc/passwd", "ftp://example.org/x", "javascript:alert(1)", "http:///nohost"]:
        with pytest.raises(InvalidInput):
            deliver(url, {}, SECRET)
        with pytest.raises(InvalidInput):
            deliver_async(url, {}, SECRET)


def test_deliver_async_does_not_block(receiver_factory) -> None:
    rx = receiver_factory([500, 200])
    done = threading.Event()
    results = []

    def on_done(result) -> None:
        results.append(result)
        done.set()

    started = time.monotonic()
    thread = deliver_async(rx.url, {"event": "return.created"}, SECRET, on_done=on_done, backoff=0.3)
    assert time.monotonic() - started < 0.2  # the backoff alone would take longer
    assert thread.daemon
    assert done.wait(10)
    assert results[0].ok and results[0].attempts == 2
    assert {c["headers"]["X-Nbpack-Delivery"] for c in rx.calls} == {results[0].delivery_id}
