"""The whole chain under faults: three gunicorn replicas on one SeaweedFS bucket behind nginx, 20 concurrent return
uploads whose handles call back to one receiver, one replica SIGKILLed mid-way and SeaweedFS restarted once.

Every return is stored once; every create (the client sends an Idempotency-Key), sent again with its key after the
faults, answers the same handle; and every webhook reaches the receiver, verified with the `standardwebhooks`
library, and is recorded once there (deduplicated by ``webhook-id``, as docs/esap.md tells ESAP to): the outbox is
in storage, so what the dead replica had queued or was sending goes out from another one once its lease has run out.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from nbpack.client import Client
from nbpack.store.backends import open_storage
from nbpack.webhooks.signing import message_id
from tests.fixtures.nginx import Nginx
from tests.fixtures.service import ServiceProcess, service_env
from tests.integration.test_scale_out import _make_returns, _rid

KEY = secrets.token_urlsafe(16)
WEBHOOK_SECRET = "fault-test-webhook-secret-" + secrets.token_hex(8)
UPLOADS = 20
HANDLES = 2
CREATES = 4


class Receiver:
    """ESAP's endpoint: verifies each POST, keeps every arrival and records each ``webhook-id`` once.

    It answers after ``delay`` seconds, so deliveries are in flight (leased) when a replica dies.
    """

    def __init__(self, delay: float) -> None:
        self.arrivals: list[str] = []
        self.recorded: dict[str, dict] = {}
        self.forged = 0
        self.lock = threading.Lock()
        rx = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    event = Webhook(WEBHOOK_SECRET.encode()).verify(body, dict(self.headers))
                except WebhookVerificationError:
                    with rx.lock:
                        rx.forged += 1
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                time.sleep(delay)
                msg = self.headers["webhook-id"]
                with rx.lock:
                    rx.arrivals.append(msg)
                    rx.recorded.setdefault(msg, event)  # dedup by id, as ESAP does
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/esap-api/nbpack/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Cluster:
    replicas: list[ServiceProcess]
    lb: Nginx
    storage: str
    endpoint: str
    receiver: Receiver


@pytest.fixture
def cluster(s3_env, s3_bucket: str, tmp_path: Path) -> Iterator[Cluster]:  # noqa: ANN001
    storage = f"s3://{s3_bucket}/nbpack"
    secret = secrets.token_urlsafe(32)
    receiver = Receiver(delay=1.5)
    replicas = [ServiceProcess({}, tmp_path / f"replica-{i}.log", workers=1, threads=8) for i in range(3)]
    lb = Nginx([f"127.0.0.1:{r.port}" for r in replicas], tmp_path / "nginx")
    for i, replica in enumerate(replicas):
        replica.env = service_env(
            storage,
            KEY,
            secret_key=secret,
            public_url=lb.url,
            cache_dir=str(tmp_path / f"cache-{i}"),
            webhook_secret=WEBHOOK_SECRET,
            # The receiver is on 127.0.0.1: only an operator's list lets a callback reach it.
            webhook_allow="default=http://127.0.0.1",
            # Short, so a dead replica's lease runs out within the test: 2 * (1 + 3) + 5 = 13 s.
            webhook_connect_timeout="1",
            webhook_timeout="3",
            webhook_poll="0.5",
        )
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(ServiceProcess.start, replicas))
        lb.start()
        yield Cluster(replicas, lb, storage, s3_env.endpoint, receiver)
    finally:
        lb.stop()
        receiver.close()
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(lambda r: r.stop(), replicas))


def _sending_to(replica: ServiceProcess, port: int) -> bool:
    """The replica's processes hold an established TCP connection to ``port`` (a webhook in flight), from /proc."""
    assert replica.proc is not None
    master = replica.proc.pid
    try:
        pids = [master, *map(int, Path(f"/proc/{master}/task/{master}/children").read_text().split())]
    except OSError:
        return False
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        if remote_port == port and fields[3] == "01" and fields[9] in inodes:
            return True
    return False


def _post(url: str, token: str, data: bytes, within: float = 120) -> tuple[int, dict, int]:
    """POST a return zip as the runtime does, retrying lost answers, 5xx and refused connections with a growing
    pause (nginx leaves a replica that failed alone for 5 s: all three may be out at once while S3 restarts):
    (status, answer, tries)."""
    last: object = None
    deadline = time.monotonic() + within
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        req = urllib.request.Request(
            url,
            data=data,
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/zip"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read()), attempt
        except urllib.error.HTTPError as err:
            last = (err.code, err.read()[:300])
            if err.code < 500:
                return err.code, {"error": str(last)}, attempt
        except (OSError, http.client.HTTPException) as err:  # refused, reset, or an answer cut off (IncompleteRead)
            last = err
        time.sleep(min(3.0, 0.5 * attempt))
    raise AssertionError(f"upload failed {attempt} times in {within} s: {last}")


def test_killed_replica_and_restarted_storage_lose_no_webhook(
    cluster: Cluster,
    tmp_path: Path,
    s3_env,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NBPACK_RETRY_DELAY", "2")  # the client's create retries: 2, 4, 8 s
    client = Client(cluster.lb.url, KEY)
    request = {
        "title": "Webhook faults",
        "catalogs": [{"name": "m", "rows": [{"id": 2**60 + 1, "name": "Ωmega, star"}]}],
        "callback_url": cluster.receiver.url,
    }
    handles = [client.create(request) for _ in range(HANDLES)]
    returns_of: list[dict] = []
    for n, created in enumerate(handles):
        path = client.download(created["id"], tmp_path / f"b{n}.zip")
        folder = tmp_path / f"bundle-{n}"
        with zipfile.ZipFile(path) as zf:
            zf.extractall(folder)
            returns_of.append(json.loads(zf.read("nbpack.json"))["returns"])
    # 20 distinct returns of the same content (a return belongs to the content; each goes to one handle).
    zips = _make_returns(tmp_path / "bundle-0", [tmp_path / f"run-{i}" for i in range(UPLOADS)])
    plan = [(i % HANDLES, z) for i, z in enumerate(zips)]
    expected = {(handles[h]["id"], _rid(z)) for h, z in plan}
    assert len(expected) == UPLOADS

    answers: dict[int, tuple[int, dict, int]] = {}
    victim = cluster.replicas[1]
    keys = [f"fault-create-{n}-{secrets.token_hex(4)}" for n in range(CREATES)]
    first: dict[str, str] = {}

    def upload(i: int) -> None:
        h, z = plan[i]
        answers[i] = _post(returns_of[h]["endpoint"], returns_of[h]["token"], z.read_bytes())

    def create(key: str) -> None:
        # The client sends the key and retries lost answers and 5xx itself (as `nbpack push` does).
        first[key] = client.create({**request, "title": key}, idempotency_key=key)["id"]

    for key in keys:  # answered before the faults; sent again after them
        create(key)
    with ThreadPoolExecutor(max_workers=UPLOADS) as pool:
        futures = [pool.submit(upload, i) for i in range(UPLOADS)]
        # Mid-way: SIGKILL one replica while it is sending a webhook (the receiver answers slowly).
        port = cluster.receiver.server.server_address[1]
        deadline = time.monotonic() + 120
        caught = False
        while time.monotonic() < deadline and not caught:
            caught = len(answers) >= UPLOADS // 4 and _sending_to(victim, port)
            if caught:
                victim.kill()
            else:
                time.sleep(0.01)
        assert caught, "the victim never sent a webhook during the run"
        killed_after = len(answers)
        # Later: SeaweedFS restarted once, under the uploads still running and the webhooks still going out.
        while len(answers) < UPLOADS // 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        s3_env.restart()
        for f in futures:
            f.result(timeout=300)

    # Every create, sent again with its key after a replica died and S3 restarted, answers the same handle (the
    # record is in storage: any replica answers it), and no second handle was made.
    again = {k: client.create({**request, "title": k}, idempotency_key=k)["id"] for k in keys}
    assert again == first and len(set(first.values())) == CREATES
    assert len(client.list(limit=100)["bundles"]) == HANDLES + CREATES
    # Every upload answered with its return; each handle lists each of its returns once.
    assert all(a[0] in (200, 201) for a in answers.values()), [a for a in answers.values() if a[0] not in (200, 201)]
    assert {(handles[plan[i][0]]["id"], a[1].get("id")) for i, a in answers.items()} == expected, answers
    assert all(a[0] in (200, 201) for a in answers.values()), answers
    store = open_storage(cluster.storage, endpoint_url=cluster.endpoint)
    for created in handles:
        mine = sorted(rid for hid, rid in expected if hid == created["id"])
        assert sorted(r["id"] for r in client.returns(created["id"])) == mine
        keys = sorted(i.key for i in store.list(f"returns/{created['id']}/"))
        names = ("manifest.json", "return.zip")
        assert keys == sorted(f"returns/{created['id']}/{rid}/{n}" for rid in mine for n in names)

    # Every webhook arrives (bounded wait: a dead replica's lease is 13 s, retries back off 1, 2, 4 s ...).
    want = {message_id("return.created", hid, rid): (hid, rid) for hid, rid in expected}
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        with cluster.receiver.lock:
            arrived = set(cluster.receiver.recorded)
        if arrived >= set(want) and not list(store.list("webhooks/pending/")):
            break
        time.sleep(0.5)
    with cluster.receiver.lock:
        recorded = dict(cluster.receiver.recorded)
        arrivals = list(cluster.receiver.arrivals)
    missing = set(want) - set(recorded)
    assert not missing, (len(missing), [r.log_tail(20) for r in cluster.replicas if r is not victim])
    assert set(recorded) == set(want) and cluster.receiver.forged == 0
    for msg, event in recorded.items():
        hid, rid = want[msg]
        assert event["type"] == "return.created"
        assert event["data"] == {"tenant": "default", "bundle_id": hid, "return_id": rid, "status": "completed"}
    # Ended once each in the outbox: delivered, nothing left pending or claimed.
    done = [json.loads(store.read_bytes(i.key)) for i in store.list("webhooks/done/")]
    assert sorted(d["id"] for d in done) == sorted(want) and {d["outcome"] for d in done} == {"delivered"}
    assert not list(store.list("webhooks/pending/")) and not list(store.list("webhooks/claims/"))
    # What the victim was sending when it died was taken over once its lease ran out: a second attempt.
    assert any(d["attempts"] >= 2 for d in done), done
    tries = sorted(a[2] for a in answers.values())
    print(
        f"killed after {killed_after} answers; upload tries {tries}; {len(arrivals)} arrivals for {len(want)}"
        f" webhooks ({len(arrivals) - len(want)} duplicates deduplicated); attempts per webhook"
        f" {sorted(d['attempts'] for d in done)}"
    )
