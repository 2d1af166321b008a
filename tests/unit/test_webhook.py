"""Webhooks, piece by piece: Standard Webhooks signatures (verified with the same library ESAP uses), where a
callback may go (SSRF, every spelling), one attempt against a real receiver on 127.0.0.1 (pinned address, no
redirect), the circuit breaker, the outbox's create-once claims on a real folder, and fairness between tenants."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from nbpack.config import load_config
from nbpack.errors import InvalidInput
from nbpack.store.local import LocalStorage
from nbpack.webhooks import outbox, signing, targets
from nbpack.webhooks.breaker import Breakers
from nbpack.webhooks.delivery import attempt, redact_url

SECRET = "whsec_" + base64.b64encode(b"s3cret-shared-with-esap-32-bytes").decode()
OTHER = "whsec_" + base64.b64encode(b"another-tenant-secret-32-bytes!!").decode()
HID, RID = "h-" + "a" * 24, "r-" + "b" * 24

# Copied literally from docs/esap.md; test_doc_snippet_is_current keeps the two identical.
DOC_SNIPPET = """\
from standardwebhooks import Webhook, WebhookVerificationError

def verify_nbpack(secret, tenant, body, headers):  # str, str, bytes, dict of the request's headers
    \"\"\"The notification when nbpack signed it with this tenant's secret less than 5 minutes ago, else None.\"\"\"
    key = secret if secret.startswith("whsec_") else secret.encode()
    try:
        event = Webhook(key).verify(body, headers)  # webhook-id, webhook-timestamp, webhook-signature
    except WebhookVerificationError:
        return None
    return event if event.get("data", {}).get("tenant") == tenant else None
"""
_ns: dict = {}
exec(DOC_SNIPPET, _ns)
verify_nbpack = _ns["verify_nbpack"]


def test_doc_snippet_is_current() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "esap.md").read_text()
    assert DOC_SNIPPET in doc


# -- signing -------------------------------------------------------------------------------------


def test_standard_webhooks_headers_verify_with_the_library_and_name_the_tenant() -> None:
    notice = outbox.notice_for("esap-prod", HID, RID, "https://esap.example.org/hook", "completed", datetime.now(UTC))
    body = notice.body.encode()
    headers = signing.signed_headers([SECRET], notice.id, body)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == notice.id == signing.message_id("return.created", HID, RID)
    assert headers["webhook-signature"].startswith("v1,")
    event = Webhook(SECRET).verify(body, headers)
    assert event["type"] == "return.created" and event["data"] == {
        "tenant": "esap-prod",
        "bundle_id": HID,
        "return_id": RID,
        "status": "completed",
    }
    assert verify_nbpack(SECRET, "esap-prod", body, headers) == event
    # Another tenant's receiver (its own secret) refuses it; so does a receiver expecting another tenant.
    assert verify_nbpack(OTHER, "esap-prod", body, headers) is None
    assert verify_nbpack(SECRET, "esap-test", body, headers) is None
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"completed", b"failed"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body, {**headers, "webhook-id": "msg_other"})
    stale = signing.signed_headers([SECRET], notice.id, body, datetime.fromtimestamp(time.time() - 301, UTC))
    assert verify_nbpack(SECRET, "esap-prod", body, stale) is None


def test_rotation_signs_with_every_secret_and_plain_secrets_are_their_bytes() -> None:
    body = b'{"type":"return.created","data":{"tenant":"default"}}'
    headers = signing.signed_headers([SECRET, OTHER], "msg_1", body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(SECRET).verify(body, headers) and Webhook(OTHER).verify(body, headers)
    plain = "legacy-secret-0123456789"
    legacy = signing.signed_headers([plain], "msg_1", body)
    assert Webhook(plain.encode()).verify(body, legacy)
    assert verify_nbpack(plain, "default", body, legacy)
    with pytest.raises(InvalidInput):
        signing.signed_headers([], "msg_1", body)


def test_secrets_per_tenant_from_config_never_echoed() -> None:
    base = {"NBPACK_STORAGE": "/tmp/x", "NBPACK_SECRET_KEY": "k" * 32, "NBPACK_PUBLIC_URL": "https://nb.example.org"}
    cfg = load_config(
        {
            **base,
            "NBPACK_WEBHOOK_SECRETS": f"esap-prod={SECRET},esap-test={OTHER},esap-prod={OTHER}",
            "NBPACK_WEBHOOK_SECRET": "legacy-default-secret-0123",
            "NBPACK_WEBHOOK_ALLOW": "esap-test=http://127.0.0.1,esap-test=esap.example.org:8443",
        }
    )
    assert cfg.webhook_secrets == {
        "esap-prod": [SECRET, OTHER],
        "esap-test": [OTHER],
        "default": ["legacy-default-secret-0123"],
    }
    assert cfg.webhook_allow == {"esap-test": ["http://127.0.0.1", "esap.example.org:8443"]}
    for bad in ("esap-prod=whsec_%%%notbase64", "esap-prod=whsec_c2hvcnQ=", "esap-prod=short", "no-equals-sign"):
        with pytest.raises(InvalidInput) as err:
            load_config({**base, "NBPACK_WEBHOOK_SECRETS": bad})
        assert bad.partition("=")[2] not in err.value.message or "=" not in bad


# -- where a callback may go ---------------------------------------------------------------------

INTERNAL = [
    "https://127.0.0.1:8443/hook",
    "https://[::1]/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://localhost./hook",
    "https://localhost/hook",
    "https://foo.localhost/hook",
    "https://127.1/hook",
    "https://2130706433/hook",
    "https://0x7f.1/hook",
    "https://0177.0.0.1/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:7f00:1]/hook",
    "https://[::127.0.0.1]/hook",
    "https://[64:ff9b::7f00:1]/hook",
    "https://[2002:7f00:1::]/hook",
    "https://[fe80::1]/hook",
    "https://[fd00::1]/hook",
    "https://[::]/hook",
    "https://10.0.0.1/hook",
    "https://192.168.1.1/hook",
    "https://172.16.5.4/hook",
    "https://100.64.0.1/hook",
    "https://224.0.0.1/hook",
    "https://255.255.255.255/hook",
    "https://240.0.0.1/hook",
    "https://0.0.0.0/hook",
    "https://0/hook",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://METADATA.GOOGLE.INTERNAL./x",
]


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_callbacks_are_refused_in_every_spelling(url: str) -> None:
    with pytest.raises(InvalidInput, match="callback_url"):
        targets.check(url)


def _fake(addresses: list[str]):  # noqa: ANN202
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return addresses

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def test_names_resolving_inside_are_refused_and_public_ones_pinned() -> None:
    for inside in (["10.1.2.3"], ["93.184.216.34", "127.0.0.1"], ["::ffff:169.254.169.254"], ["0.0.0.0"]):
        with pytest.raises(InvalidInput, match="resolves to"):
            targets.check("https://esap.example.org/hook", resolve=_fake(inside))
    target = targets.check("https://ESAP.example.org.:8443/h?x=1", resolve=_fake(["93.184.216.34", "2606:2800::1"]))
    assert (target.host, target.port, target.path) == ("esap.example.org", 8443, "/h?x=1")
    assert target.addresses == ("93.184.216.34", "2606:2800::1")
    for bad in ("http://esap.example.org/h", "ftp://esap.example.org/", "https://u:p@esap.example.org/", "https:///x"):
        with pytest.raises(InvalidInput):
            targets.check(bad, resolve=_fake(["93.184.216.34"]))
    with pytest.raises(targets.Unresolved):
        targets.check("https://nowhere.example.org/", resolve=_fake([]))


def test_operator_allow_list_per_tenant() -> None:
    allow = ["http://127.0.0.1", "https://esap.cluster.svc:8443"]
    assert targets.check("http://127.0.0.1:5001/hook", allow).addresses == ("127.0.0.1",)
    assert targets.check("https://esap.cluster.svc:8443/h", allow, resolve=_fake(["10.0.0.7"])).addresses == (
        "10.0.0.7",
    )
    for refused in (
        "https://127.0.0.1:5001/hook",  # listed for http only
        "http://127.1:5001/hook",  # another spelling is another host
        "https://esap.cluster.svc:9443/h",  # another port
        "https://esap.example.org/h",  # a public host, but the tenant has a list
    ):
        with pytest.raises(InvalidInput):
            targets.check(refused, allow, resolve=_fake(["10.0.0.7"]))
    with pytest.raises(InvalidInput, match="unspecified"):
        targets.check("http://0.0.0.0:80/", ["http://0.0.0.0"])
    # Local mode (nbpack serve on a laptop) keeps loopback, and only loopback.
    assert targets.check("http://127.0.0.1:9/x", local_mode=True).addresses == ("127.0.0.1",)
    with pytest.raises(InvalidInput):
        targets.check("http://10.0.0.1:9/x", local_mode=True)


# -- one attempt against a real receiver ---------------------------------------------------------


class Receiver:
    """An HTTP endpoint on 127.0.0.1 answering each POST with the next scripted (status, headers)."""

    def __init__(self, script: list[tuple[int, dict[str, str]]] | None = None) -> None:
        self.script = list(script or [])
        self.calls: list[dict] = []
        rx = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                call = {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                rx.calls.append(call)
                status, extra = rx.script.pop(0) if rx.script else (200, {})
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET = _answer  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    yield rx
    rx.close()


def test_attempt_connects_to_the_checked_address_with_the_urls_host(receiver: Receiver) -> None:
    resolve = _fake(["127.0.0.1"])
    url = f"http://hook.test:{receiver.port}/esap/hook?k=query-secret"
    got = attempt(url, b'{"a":1}', "msg_x", [SECRET], allow=["http://hook.test"], resolve=resolve)
    assert got.ok and got.status == 200, got
    assert resolve.calls == ["hook.test"]  # one lookup, checked; the connection used its answer
    [call] = receiver.calls
    assert call["headers"]["Host"] == f"hook.test:{receiver.port}" and call["path"] == "/esap/hook?k=query-secret"
    assert call["headers"]["webhook-id"] == "msg_x" and Webhook(SECRET).verify(call["body"], call["headers"])


def test_attempt_outcomes_redirect_4xx_5xx_and_refusal(receiver: Receiver) -> None:
    url = f"http://127.0.0.1:{receiver.port}/hook"
    allow = ["http://127.0.0.1"]
    receiver.script = [
        (302, {"Location": f"http://127.0.0.1:{receiver.port}/elsewhere"}),
        (400, {}),
        (503, {"Retry-After": "7"}),
        (429, {"Retry-After": "1" * 30}),
    ]
    moved = attempt(url, b"{}", "m", [SECRET], allow=allow)
    assert moved.status == 302 and not moved.ok and not moved.retry and "redirect" in (moved.error or "")
    assert [c["path"] for c in receiver.calls] == ["/hook"]  # the Location was never visited
    assert attempt(url, b"{}", "m", [SECRET], allow=allow).retry is False
    busy = attempt(url, b"{}", "m", [SECRET], allow=allow)
    assert busy.retry and busy.retry_after == 7.0
    assert attempt(url, b"{}", "m", [SECRET], allow=allow).retry_after is None  # an absurd Retry-After is ignored
    refused = attempt(url, b"{}", "m", [SECRET])  # no allow-list: loopback is refused at delivery too
    assert not refused.retry and refused.status is None and "refused" in (refused.error or "")
    assert len(receiver.calls) == 4
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    down = attempt(f"http://127.0.0.1:{closed}/x", b"{}", "m", [SECRET], allow=allow, connect_timeout=1)
    assert down.retry and down.status is None and "refused" in (down.error or "").lower()
    assert redact_url("https://u:p@h.example:8443/p/a?x=1#f") == "https://h.example:8443/p/a"


# -- circuit breaker -----------------------------------------------------------------------------


def test_breaker_opens_after_failures_then_lets_one_probe() -> None:
    b = Breakers(threshold=3, cooldown=10)
    for _ in range(3):
        assert b.allow("h", 0)
        b.record("h", False, 0)
    assert not b.allow("h", 5) and b.open_hosts(5) == ["h"] and b.allow("other", 5)
    assert b.allow("h", 11) and not b.allow("h", 11)  # one probe at a time
    b.record("h", False, 11)
    assert not b.allow("h", 20)
    assert b.allow("h", 22)
    b.record("h", True, 22)
    assert b.allow("h", 22) and b.allow("h", 22) and b.open_hosts(22) == []


# -- the outbox on a real folder -----------------------------------------------------------------


def _notice(url: str = "https://esap.example.org/hook") -> outbox.Notice:
    return outbox.notice_for("esap-prod", HID, RID, url, "completed", datetime.now(UTC))


def test_enqueue_is_once_and_done_is_final(tmp_path: Path) -> None:
    st = LocalStorage(tmp_path)
    first, again = _notice(), _notice()
    assert outbox.enqueue(st, first) and outbox.enqueue(st, again)
    assert [(w.hid, w.rid) for w in outbox.waiting(st)] == [(HID, RID)]
    assert outbox.load(st, HID, RID) == first  # the first body stays: every attempt sends the same bytes
    outbox.finish(st, first, "delivered", {"attempts": 1, "status": 200})
    assert outbox.waiting(st) == [] and not outbox.enqueue(st, again)
    assert json.loads(st.read_bytes(f"webhooks/done/{HID}/{RID}.json"))["outcome"] == "delivered"
    assert not list(st.list("webhooks/claims/"))


def test_claims_are_create_once_across_threads_and_leases_expire(tmp_path: Path) -> None:
    st = LocalStorage(tmp_path)
    outbox.enqueue(st, _notice())
    now = time.time()
    barrier = threading.Barrier(8)
    got: list[outbox.Claim] = []

    def race() -> None:
        barrier.wait()
        got.append(outbox.claim(st, HID, RID, lease=30, backoff=lambda n: 1.0, now=now))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(c.attempt for c in got if c.attempt is not None) == [1]
    held = outbox.claim(st, HID, RID, lease=30, backoff=lambda n: 1.0, now=now + 1)
    assert held.attempt is None and held.ready_at >= now + 25  # a live lease is not taken
    # The holder died: once its lease has run out the next attempt is claimable, once.
    assert outbox.claim(st, HID, RID, lease=30, backoff=lambda n: 1.0, now=now + 40).attempt == 2
    # A replica that lists just after that claim, on the same clock, sees a live lease (it once read the store's
    # modified time instead of the holder's, took lease 2 as run out and claimed attempt 3 beside it).
    assert outbox.claim(st, HID, RID, lease=30, backoff=lambda n: 1.0, now=now + 40).attempt is None
    # A failed attempt ends its lease early; the next waits for its backoff (or Retry-After, if longer).
    outbox.release(st, HID, RID, 2, 5.0, {"status": 503})
    assert outbox.claim(st, HID, RID, lease=30, backoff=lambda n: 1.0, now=time.time() + 1).attempt is None
    assert outbox.claim(st, HID, RID, lease=30, backoff=lambda n: 1.0, now=time.time() + 7).attempt == 3


# -- the dispatcher: fair between tenants, once per notification ---------------------------------


class Stalled:
    """Accepts connections and never answers (what the issue's experiment registered as a callback)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.most = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            self.most = max(self.most, sum(1 for c in self.held if c.fileno() != -1))

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def _dispatcher(tmp_path: Path, **extra: str):  # noqa: ANN202
    from nbpack.webhooks.dispatch import Dispatcher

    env = {
        "NBPACK_STORAGE": str(tmp_path / "s"),
        "NBPACK_SECRET_KEY": "k" * 32,
        "NBPACK_PUBLIC_URL": "https://nb.example.org",
        "NBPACK_WEBHOOK_SECRETS": f"slow={OTHER},esap={SECRET}",
        "NBPACK_WEBHOOK_ALLOW": "slow=http://127.0.0.1,esap=http://127.0.0.1",
        "NBPACK_WEBHOOK_POLL": "0.2",
        **extra,
    }
    storage = LocalStorage(tmp_path / "s")
    return storage, Dispatcher(storage, load_config(env))


def _queue(storage: LocalStorage, tenant: str, n: int, url: str) -> outbox.Notice:
    hid, rid = f"h-{n:024x}", f"r-{n:024x}"
    storage.put_bytes(f"returns/{hid}/{rid}/manifest.json", b"{}")
    notice = outbox.notice_for(tenant, hid, rid, url, "completed", datetime.now(UTC))
    assert outbox.enqueue(storage, notice)
    return notice


def test_a_stalled_tenant_does_not_delay_another(tmp_path: Path, receiver: Receiver) -> None:
    stalled = Stalled()
    storage, dispatcher = _dispatcher(tmp_path, NBPACK_WEBHOOK_TIMEOUT="20")
    try:
        for n in range(6):  # queued first, so a first-come queue would serve them first
            _queue(storage, "slow", n, f"http://127.0.0.1:{stalled.port}/hook/{n}")
        mine = _queue(storage, "esap", 99, f"http://127.0.0.1:{receiver.port}/hook")
        started = time.monotonic()
        dispatcher.kick()
        while not receiver.calls and time.monotonic() - started < 5:
            time.sleep(0.02)
        took = time.monotonic() - started
        assert receiver.calls, "the healthy tenant's webhook did not arrive within 5 s"
        assert took < 3, took
        assert receiver.calls[0]["headers"]["webhook-id"] == mine.id
        assert (
            Webhook(SECRET).verify(receiver.calls[0]["body"], receiver.calls[0]["headers"])["data"]["tenant"] == "esap"
        )
        # The stalled tenant holds its two slots, no more.
        assert stalled.most == 2, stalled.most
        deadline = time.monotonic() + 5
        while not dispatcher.counts()["delivered"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert json.loads(storage.read_bytes(f"webhooks/done/{mine.hid}/{mine.rid}.json"))["outcome"] == "delivered"
        assert dispatcher.counts()["delivered"] == 1
        assert not outbox.enqueue(storage, mine)  # a re-sent upload queues nothing once delivered
    finally:
        dispatcher.stop()
        stalled.close()
    assert len(receiver.calls) == 1


def test_failing_host_is_retried_then_given_up_and_logged_without_secrets(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    receiver.script = [(503, {})] * 10
    storage, dispatcher = _dispatcher(tmp_path, NBPACK_WEBHOOK_ATTEMPTS="2")
    url = f"http://127.0.0.1:{receiver.port}/hook?token=query-secret"
    notice = _queue(storage, "esap", 1, url)
    with caplog.at_level(logging.INFO, logger="nbpack.webhooks"):
        dispatcher.kick()
        deadline = time.monotonic() + 10
        while dispatcher.counts()["failed"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        dispatcher.stop()
    assert dispatcher.counts() == {"delivered": 0, "retried": 1, "failed": 1, "refused": 0, "orphaned": 0}
    assert len(receiver.calls) == 2 and len({c["headers"]["webhook-id"] for c in receiver.calls}) == 1
    assert receiver.calls[0]["headers"]["webhook-signature"] != receiver.calls[1]["headers"]["webhook-signature"]
    done = json.loads(storage.read_bytes(f"webhooks/done/{notice.hid}/{notice.rid}.json"))
    assert done["outcome"] == "failed" and done["status"] == 503 and done["attempts"] == 2
    [final] = [r for r in caplog.records if r.getMessage() == "webhook not delivered"]
    assert final.target == url.split("?")[0] and final.status == 503
    text = caplog.text + json.dumps([r.__dict__ for r in caplog.records], default=str)
    assert "query-secret" not in text and SECRET not in text and "v1," not in text


def test_creates_with_internal_callbacks_are_refused_with_400_and_store_nothing(tmp_path: Path) -> None:
    from tests.helpers import APP_API_KEY, make_app

    client = make_app(tmp_path, webhook_secret="w" * 32).test_client()
    request = {"title": "t", "catalogs": [{"name": "m", "rows": [{"k": 1}]}]}
    for url in INTERNAL[::3]:  # every spelling is checked above; here, that the create call applies the check
        resp = client.post("/api/v1/bundles", json={**request, "callback_url": url}, headers={"X-API-Key": APP_API_KEY})
        assert resp.status_code == 400 and "callback_url" in resp.get_json()["message"], (url, resp.get_json())
    assert not (tmp_path / "store" / "handles").exists()
    # Another tenant's secret does not sign this tenant's webhooks: without its own, a callback is refused.
    other = make_app(tmp_path / "o", webhook_secrets=f"esap-test={SECRET}").test_client()
    resp = other.post(
        "/api/v1/bundles",
        json={**request, "callback_url": "https://esap.example.org/hook"},
        headers={"X-API-Key": APP_API_KEY},
    )
    assert resp.status_code == 400 and "webhook secret for this tenant" in resp.get_json()["message"]


def test_deleting_a_handle_drops_its_outbox_records(tmp_path: Path) -> None:
    st = LocalStorage(tmp_path)
    notice = _notice()
    outbox.enqueue(st, notice)
    outbox.claim(st, HID, RID, lease=30, backoff=lambda n: 1.0, now=time.time())
    other = outbox.notice_for("esap-prod", "h-" + "c" * 24, RID, notice.url, "completed", datetime.now(UTC))
    outbox.enqueue(st, other)
    outbox.forget(st, HID)
    assert [(w.hid, w.rid) for w in outbox.waiting(st)] == [(other.hid, RID)]
    assert not list(st.list(f"webhooks/claims/{HID}/"))


def test_a_host_that_turns_internal_after_create_is_refused_at_delivery(receiver: Receiver) -> None:
    url = f"https://esap.example.org:{receiver.port}/hook"
    assert targets.check(url, resolve=_fake(["93.184.216.34"])).addresses == ("93.184.216.34",)  # at create
    rebound = _fake(["127.0.0.1"])  # DNS rebinding: the same name now points inside
    got = attempt(url, b"{}", "m", [SECRET], resolve=rebound)
    assert not got.ok and not got.retry and "loopback" in (got.error or "") and receiver.calls == []
