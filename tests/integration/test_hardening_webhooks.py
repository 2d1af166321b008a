"""Webhooks that cannot be delivered: logged without secrets, counted in /metrics, bounded in threads, and never
changing an upload's answer. Real slow and failing receivers on 127.0.0.1; the service under gunicorn."""

from __future__ import annotations

import io
import json
import logging
import re
import ssl
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
import trustme

from nbpack.webhooks.delivery import Notifier, redact_url
from tests.fixtures.service import service_env
from tests.integration.test_direct_upload import KEY, Setup, _call, built  # noqa: F401 - fixture

SECRET = "webhook-secret-" + "s" * 20


class Receiver:
    """Answers every POST with ``status`` after ``delay`` seconds; counts calls and the most at once."""

    def __init__(self, status: int, delay: float = 0.0, tls: ssl.SSLContext | None = None) -> None:
        self.calls = 0
        self.active = self.most = 0
        self.lock = threading.Lock()
        rx = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with rx.lock:
                    rx.calls += 1
                    rx.active += 1
                    rx.most = max(rx.most, rx.active)
                time.sleep(delay)
                with rx.lock:
                    rx.active -= 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/esap/notify?token=query-secret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for rx in made:
        rx.close()


def _webhook_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "nbpack-webhook")


def _no_secrets(text: str) -> None:
    assert "query-secret" not in text and SECRET not in text and "v1=" not in text, text


def test_slow_receiver_holds_a_bounded_pool(receivers: list[Receiver], caplog: pytest.LogCaptureFixture) -> None:
    rx = Receiver(200, delay=0.5)
    receivers.append(rx)
    notifier = Notifier(workers=2, queue_size=3, attempts=1, timeout=5)
    before = _webhook_threads()
    with caplog.at_level(logging.WARNING, logger="nbpack.webhooks.delivery"):
        accepted = sum(notifier.submit(rx.url, {"event": "return.created", "n": i}, SECRET) for i in range(20))
        assert _webhook_threads() - before <= 2
        assert notifier.join(30)
    counts = notifier.counts()
    assert 3 <= accepted <= 5 and counts["dropped"] == 20 - accepted, (accepted, counts)
    assert counts["delivered"] == accepted == rx.calls and rx.most <= 2
    dropped = [r for r in caplog.records if getattr(r, "outcome", None) == "dropped"]
    assert len(dropped) == 20 - accepted
    assert dropped[0].target == rx.url.split("?")[0] and "queue is full" in dropped[0].error
    _no_secrets(caplog.text + json.dumps([r.__dict__ for r in caplog.records], default=str))


def test_failing_receiver_is_logged_and_counted(receivers: list[Receiver], caplog: pytest.LogCaptureFixture) -> None:
    rx = Receiver(500)
    receivers.append(rx)
    notifier = Notifier(workers=1, queue_size=5, attempts=2, backoff=0.01, timeout=5)
    with caplog.at_level(logging.WARNING, logger="nbpack.webhooks.delivery"):
        assert notifier.submit(rx.url, {"event": "return.created"}, SECRET)
        assert notifier.submit("https://127.0.0.1:1/x?sig=query-secret", {}, SECRET)  # nothing listens
        assert not notifier.submit("ftp://example.org/x?token=query-secret", {}, SECRET)
        assert notifier.join(30)
    assert notifier.counts() == {"delivered": 0, "failed": 2, "dropped": 0, "invalid": 1}
    assert rx.calls == 2
    failed = [r for r in caplog.records if getattr(r, "outcome", None) == "failed"]
    assert {r.status for r in failed} == {500, None} and {r.attempts for r in failed} == {2}
    _no_secrets(caplog.text + json.dumps([r.__dict__ for r in caplog.records], default=str))
    assert redact_url("https://u:p@h.example:8443/p/a?x=1#f") == "https://h.example:8443/p/a"


def _metric(url: str, token: str, outcome: str) -> float:
    status, body = _call(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
    assert status == 200
    m = re.search(rf'^nbpack_webhook_deliveries_total\{{outcome="{outcome}"\}} (\S+)$', body.decode(), re.M)
    return float(m.group(1)) if m else 0.0


def test_undeliverable_webhook_under_gunicorn(
    start_service,
    built: Path,  # noqa: F811
    tmp_path: Path,
    receivers: list[Receiver],
) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    rx = Receiver(500, tls=tls)
    receivers.append(rx)
    token = "metrics-" + "t" * 20
    svc = start_service(
        service_env(
            str(tmp_path / "store"),
            KEY,
            cache_dir=str(tmp_path / "cache"),
            webhook_secret=SECRET,
            webhook_attempts="2",
            metrics_token=token,
            SSL_CERT_FILE=str(ca_file),
        )
    )
    status, body = _call(
        f"{svc.url}/api/v1/bundles?callback_url={quote(rx.url, safe='')}",
        data=built.read_bytes(),
        method="POST",
        headers={"X-API-Key": KEY, "Content-Type": "application/zip"},
    )
    assert status == 201, body
    status, data = _call(json.loads(body)["links"]["download"])
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(folder)
    st = Setup(svc, folder, json.loads((folder / "nbpack.json").read_text()), str(tmp_path / "store"), None)

    full, _ = st.run(1, tmp_path / "r.zip", upload=False)
    status, answer = st.post(full.read_bytes())
    assert status == 201, answer  # the failing webhook does not touch the upload's answer
    deadline = time.monotonic() + 60
    while _metric(svc.url, token, "failed") < 1:
        assert time.monotonic() < deadline, svc.log_tail()
        time.sleep(0.2)
    assert rx.calls == 2 and _metric(svc.url, token, "delivered") == 0
    status, again = st.post(full.read_bytes())
    assert status == 200 and again["id"] == answer["id"]
    log = svc.log_path.read_text()
    lines = [json.loads(ln) for ln in log.splitlines() if '"webhook not delivered"' in ln]
    assert len(lines) == 1 and lines[0]["status"] == 500 and lines[0]["target"] == rx.url.split("?")[0], lines
    _no_secrets(log)
