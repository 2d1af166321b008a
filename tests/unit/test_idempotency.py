"""Idempotent creates in process: a retried create gets the first answer (per tenant); a failed create releases its
key. Racing replicas on SeaweedFS are in tests/integration/test_trust_idempotency.py."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import APP_API_KEY, make_app
from tests.openapi_check import check_response

KEY2 = "second-tenant-key-0123456789"


REQUEST = {"title": "Once, ünïcode", "catalogs": [{"name": "c", "rows": [{"id": 2**53 + 1, "x": None}]}]}


def _listed(client, key: str = APP_API_KEY) -> list[str]:
    return [b["id"] for b in client.get("/api/v1/bundles", headers={"X-API-Key": key}).get_json()["bundles"]]


def test_a_retried_create_gets_the_first_answer(tmp_path: Path) -> None:
    app = make_app(tmp_path, api_keys=f"alpha={APP_API_KEY},beta={KEY2}")
    client = app.test_client()
    h = {"X-API-Key": APP_API_KEY, "Idempotency-Key": "3f6c1d2e-run-1"}
    first = client.post("/api/v1/bundles", headers=h, json=REQUEST)
    assert first.status_code == 201, first.get_json()
    assert "Idempotent-Replayed" not in first.headers
    again = client.post(
        "/api/v1/bundles", headers=h, data=json.dumps(REQUEST, indent=3), content_type="application/json"
    )
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert check_response(again) == first.get_json()
    assert _listed(client) == [first.get_json()["id"]]
    # The same key with another request: refused, nothing created.
    other = client.post("/api/v1/bundles", headers=h, json={**REQUEST, "title": "Another"})
    assert other.status_code == 422 and check_response(other)["error"] == "idempotency_key_reused"
    # Keys are per tenant: another tenant's same key is another create.
    theirs = client.post("/api/v1/bundles", headers={**h, "X-API-Key": KEY2}, json=REQUEST)
    assert theirs.status_code == 201 and theirs.get_json()["id"] != first.get_json()["id"]
    # Without a key every create is a new handle, as before.
    plain = client.post("/api/v1/bundles", headers={"X-API-Key": APP_API_KEY}, json=REQUEST)
    assert plain.get_json()["id"] != first.get_json()["id"] and len(_listed(client)) == 2
    # A malformed key is a 400 before anything is read or stored.
    for bad in ("", "x" * 256, "with space", "ünï"):
        resp = client.post("/api/v1/bundles", headers={**h, "Idempotency-Key": bad}, json=REQUEST)
        assert resp.status_code == 400, bad
    assert len(_listed(client)) == 2


def test_a_failed_create_releases_its_key(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = app.test_client()
    h = {"X-API-Key": APP_API_KEY, "Idempotency-Key": "k-fail-then-fix"}
    bad = client.post("/api/v1/bundles", headers=h, json={"title": "Bad", "catalogs": [{"name": "c"}]})
    assert bad.status_code == 400
    bad_again = client.post("/api/v1/bundles", headers=h, json={"title": "Bad", "catalogs": [{"name": "c"}]})
    assert bad_again.status_code == 400  # ran again (not 409, not a remembered error)
    good = client.post("/api/v1/bundles", headers=h, json=REQUEST)
    assert good.status_code == 201 and "Idempotent-Replayed" not in good.headers


def test_gc_forgets_keys_after_a_day(tmp_path: Path) -> None:
    import os
    import time

    from nbpack.service.gc import collect
    from nbpack.store.keys import idempotency_key

    app = make_app(tmp_path)
    client = app.test_client()
    for key in ("old-key", "new-key"):
        h = {"X-API-Key": APP_API_KEY, "Idempotency-Key": key}
        assert client.post("/api/v1/bundles", headers=h, json=REQUEST).status_code == 201
    old = tmp_path / "store" / idempotency_key("default", "old-key")
    assert old.is_file()
    past = time.time() - 26 * 3600
    os.utime(old, (past, past))
    report = collect(app.extensions["nbpack"])
    assert report.idempotency == [idempotency_key("default", "old-key")]
    assert not old.exists() and (tmp_path / "store" / idempotency_key("default", "new-key")).is_file()
    # Forgotten: the old key now makes a new handle.
    again = client.post(
        "/api/v1/bundles", headers={"X-API-Key": APP_API_KEY, "Idempotency-Key": "old-key"}, json=REQUEST
    )
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers


def test_a_claim_is_released_once_storage_answers_again() -> None:
    # Issue 20's fault test: a create in flight while S3 restarted left its claim behind (the delete failed too), and
    # every retry with that key was told "in progress" for 15 minutes. The claim now goes once storage is back.
    import threading
    import time

    from nbpack.errors import StorageError
    from nbpack.service import idempotency
    from nbpack.store.memory import open_memory

    store = open_memory("idempotency-release")
    down = threading.Event()
    down.set()
    deletes: list[str] = []

    class Flaky:
        def __getattr__(self, name: str):
            return getattr(store, name)

        def delete(self, key: str) -> None:
            deletes.append(key)
            if down.is_set():
                raise StorageError("storage is restarting")
            store.delete(key)

    flaky = Flaky()

    def failing_create() -> dict:
        raise StorageError("storage is restarting")

    try:
        idempotency.remembered(flaky, "t", "k-outage", "req", failing_create)  # type: ignore[arg-type]
    except StorageError:
        pass
    else:
        raise AssertionError("the create's failure was swallowed")
    where = idempotency.idempotency_key("t", "k-outage")
    assert store.exists(where), "the claim should still be there while storage refuses deletes"
    down.clear()
    deadline = time.monotonic() + 10
    while store.exists(where) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not store.exists(where) and len(deletes) >= 2
    answer, replayed = idempotency.remembered(store, "t", "k-outage", "req", lambda: {"id": "h-1"})
    assert answer == {"id": "h-1"} and not replayed
