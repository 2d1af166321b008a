"""The webhook outbox on SeaweedFS (real S3): replicas racing for the same attempt get it once, leases run out,
and a notification ends once. Each racer has its own S3 client, as separate replicas do."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from nbpack.store.backends import open_storage
from nbpack.webhooks import outbox

HID, RID = "h-" + "d" * 24, "r-" + "e" * 24


def test_claims_race_on_seaweedfs_and_the_notification_ends_once(s3_env, s3_bucket: str) -> None:  # noqa: ANN001
    url = f"s3://{s3_bucket}/nbpack"
    replicas = [open_storage(url, endpoint_url=s3_env.endpoint) for _ in range(6)]
    notice = outbox.notice_for("esap-prod", HID, RID, "https://esap.example.org/hook", "completed", datetime.now(UTC))
    queued = [False] * 6
    barrier = threading.Barrier(6)

    def enqueue(i: int) -> None:
        barrier.wait()
        queued[i] = outbox.enqueue(replicas[i], notice)

    threads = [threading.Thread(target=enqueue, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(queued) and [(w.hid, w.rid) for w in outbox.waiting(replicas[0])] == [(HID, RID)]

    for attempt in (1, 2):
        now = time.time() + (0 if attempt == 1 else 100)  # attempt 2: the first holder's lease has run out
        got: list[int | None] = []
        barrier = threading.Barrier(6)

        def race(i: int, now: float = now, barrier: threading.Barrier = barrier, got: list = got) -> None:
            barrier.wait()
            got.append(outbox.claim(replicas[i], HID, RID, lease=30, backoff=lambda n: 1.0, now=now).attempt)

        threads = [threading.Thread(target=race, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(a for a in got if a is not None) == [attempt], got

    outbox.finish(replicas[1], notice, "delivered", {"attempts": 2, "status": 204})
    assert not any(outbox.enqueue(r, notice) for r in replicas)  # a re-sent upload on any replica queues nothing
    assert outbox.waiting(replicas[2]) == []
    assert not list(replicas[3].list("webhooks/claims/"))
    assert [i.key for i in replicas[4].list("webhooks/done/")] == [f"webhooks/done/{HID}/{RID}.json"]
