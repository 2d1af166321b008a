"""Webhooks through the service under gunicorn: one that cannot be delivered is logged without secrets, counted in
/metrics and never changes an upload's answer; a tenant whose receiver never answers does not delay another's (the
issue's experiment: six stalled handles, one return each). Real receivers on 127.0.0.1, allowed by the operator's
list (``NBPACK_WEBHOOK_ALLOW``), as loopback is refused otherwise."""

from __future__ import annotations

import io
import json
import re
import socket
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
from standardwebhooks import Webhook

from tests.fixtures.service import service_env
from tests.integration.test_direct_upload import KEY, Setup, _call, built  # noqa: F401 - fixture

SECRET = "webhook-secret-" + "s" * 20
OTHER_KEY = "esap-test-key-" + "k" * 16
OTHER_SECRET = "other-tenant-secret-" + "o" * 12


class Receiver:
    """Answers every POST with ``status`` after ``delay`` seconds; counts calls and the most at once."""

    def __init__(self, status: int, delay: float = 0.0, tls: ssl.SSLContext | None = None) -> None:
        self.calls = 0
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.active = self.most = 0
        self.lock = threading.Lock()
        rx = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with rx.lock:
                    rx.calls += 1
                    rx.received.append((dict(self.headers), body))
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


def _no_secrets(text: str) -> None:
    assert "query-secret" not in text and SECRET not in text and "v1," not in text, text


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
    auth = {"Authorization": f"Bearer {token}"}
    svc = start_service(
        service_env(
            str(tmp_path / "store"),
            KEY,
            cache_dir=str(tmp_path / "cache"),
            webhook_secret=SECRET,
            webhook_attempts="2",
            webhook_allow="default=https://127.0.0.1",
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
    assert rx.calls == 2 and _metric(svc.url, token, "delivered") == 0 and _metric(svc.url, token, "retried") == 1
    # The outbox is empty again (the gauge follows the replica's next look, every 2 s).
    while not re.search(r"^nbpack_webhook_pending 0\.0$", _call(f"{svc.url}/metrics", headers=auth)[1].decode(), re.M):
        assert time.monotonic() < deadline, svc.log_tail()
        time.sleep(0.2)
    status, again = st.post(full.read_bytes())
    assert status == 200 and again["id"] == answer["id"]
    time.sleep(1.5)  # room for a wrongly queued second notification to go out (the poll is 2 s, a kick at once)
    assert rx.calls == 2
    log = svc.log_path.read_text()
    lines = [json.loads(ln) for ln in log.splitlines() if '"webhook not delivered"' in ln]
    assert len(lines) == 1 and lines[0]["status"] == 500 and lines[0]["target"] == rx.url.split("?")[0], lines
    _no_secrets(log)


def _handle(svc_url: str, key: str, callback: str, zip_bytes: bytes, folder: Path) -> tuple[dict, dict]:
    """Push the built bundle as a new handle with ``callback``; (create answer, its bundle's nbpack.json)."""
    status, body = _call(
        f"{svc_url}/api/v1/bundles?callback_url={quote(callback, safe='')}",
        data=zip_bytes,
        method="POST",
        headers={"X-API-Key": key, "Content-Type": "application/zip"},
    )
    assert status == 201, body
    created = json.loads(body)
    status, data = _call(created["links"]["download"])
    assert status == 200
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(folder)
    return created, json.loads((folder / "nbpack.json").read_text())


def _post_return(manifest: dict, data: bytes) -> tuple[int, dict]:
    returns = manifest["returns"]
    status, body = _call(
        returns["endpoint"],
        data=data,
        method="POST",
        headers={"Authorization": f"Bearer {returns['token']}", "Content-Type": "application/zip"},
    )
    return status, json.loads(body)


def test_a_tenant_whose_receiver_never_answers_does_not_delay_another(
    start_service,
    built: Path,  # noqa: F811
    tmp_path: Path,
    receivers: list[Receiver],
) -> None:
    stalled = socket.socket()  # accepts (the kernel's backlog) and never answers
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(64)
    healthy = Receiver(200)
    receivers.append(healthy)
    healthy_url = healthy.url.replace("?token=query-secret", "")
    svc = start_service(
        service_env(
            str(tmp_path / "store"),
            f"{KEY},esap-test={OTHER_KEY}",
            cache_dir=str(tmp_path / "cache"),
            webhook_secret=SECRET,
            webhook_secrets=f"esap-test={OTHER_SECRET}",
            webhook_allow="default=http://127.0.0.1,esap-test=http://127.0.0.1",
        )
    )
    try:
        zip_bytes = built.read_bytes()
        slow = [
            _handle(
                svc.url, KEY, f"http://127.0.0.1:{stalled.getsockname()[1]}/hook/{n}", zip_bytes, tmp_path / f"s{n}"
            )
            for n in range(6)
        ]
        mine, manifest = _handle(svc.url, OTHER_KEY, healthy_url, zip_bytes, tmp_path / "mine")
        # One return, sent to each handle (a return belongs to the content; each handle stores and announces it).
        st = Setup(svc, tmp_path / "s0", slow[0][1], str(tmp_path / "store"), None)
        full, _ = st.run(1, tmp_path / "r.zip", upload=False)
        data = full.read_bytes()
        for _, m in slow:
            assert _post_return(m, data)[0] == 201
        status, answer = _post_return(manifest, data)
        assert status == 201, answer
        posted = time.monotonic()
        while not healthy.received and time.monotonic() - posted < 10:
            time.sleep(0.05)
        took = time.monotonic() - posted
        assert healthy.received, f"the other tenant's webhook did not arrive in 10 s:\n{svc.log_tail()}"
        assert took < 5, took
        print(f"the other tenant's webhook arrived {took:.2f} s after its upload was answered")
        headers, body = healthy.received[0]
        event = Webhook(OTHER_SECRET.encode()).verify(body, headers)
        assert event["data"] == {
            "tenant": "esap-test",
            "bundle_id": mine["id"],
            "return_id": answer["id"],
            "status": answer["status"],
        }
    finally:
        stalled.close()
