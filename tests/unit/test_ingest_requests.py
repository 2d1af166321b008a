"""Storage requests per small return (issue 23): the quota and "already stored" come from the handle's ledger, one
conditional write, not from listings that grow with the handle's returns; that write is also where a DELETE of the
handle stops an upload (its tombstone), so neither the token check nor a check after the commit reads storage, and
without a tenant quota the tenant's bytes are in the ledger entry (one ``ledger.0`` marker per handle).

The service runs in-process over a folder store behind the counting wrapper of test_service_reads; each upload is
made with the call list cleared and the list is printed (``pytest -s`` shows it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.unit.test_service_reads import AUTH, CountingStorage, _return_zip, make_served


@pytest.fixture
def served(tmp_path: Path) -> tuple[FlaskClient, CountingStorage]:
    return make_served(tmp_path)


__all__: list[str] = []


def _setup(client: FlaskClient, storage: CountingStorage, n: int) -> tuple[str, str, list[bytes]]:
    created = client.post(
        "/api/v1/bundles", json={"title": "Requests", "catalogs": [{"name": "c", "rows": [{"id": 1}]}]}, headers=AUTH
    ).get_json()
    hid = created["id"]
    stored = json.loads(storage.inner.read_bytes(f"handles/{hid}/manifest.json"))
    notebook = storage.inner.read_bytes(f"handles/{hid}/notebook.ipynb")
    zips = []
    for i in range(n):
        m = {**stored, "payload": {**stored["payload"]}}
        nb = json.loads(notebook)
        nb.setdefault("metadata", {})["variant"] = i  # a distinct notebook: a distinct return id
        zips.append(_return_zip(m, json.dumps(nb).encode()))
    return hid, stored["returns"]["token"], zips


def _post(client: FlaskClient, storage: CountingStorage, hid: str, token: str, body: bytes) -> tuple[int, Any]:
    storage.calls.clear()
    r = client.post(
        f"/api/v1/bundles/{hid}/returns",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/zip"},
    )
    calls = [(m, re.sub(r"r-[0-9a-z]+", "RID", re.sub(r"\.[0-9a-f]{12}\.", ".NONCE.", k))) for m, k in storage.calls]
    return r.status_code, calls


def test_a_small_return_costs_a_fixed_few_requests(served: tuple[FlaskClient, CountingStorage]) -> None:
    client, storage = served
    hid, token, zips = _setup(client, storage, 4)
    status, first = _post(client, storage, hid, token, zips[0])
    assert status == 201
    print("\nfirst return of the handle:", *first, sep="\n  ")
    # The handle's first ledger lists its returns once (returns stored before ledgers existed are counted).
    assert ("list", f"returns/{hid}/") in first
    # ... and marks the handle once for the tenant's usage: tenant_usage reads this ledger's uncharged entries.
    assert ("put_bytes", f"tenants/default/usage/{hid}/ledger.0") in first
    for body in zips[1:3]:
        status, calls = _post(client, storage, hid, token, body)
        assert status == 201
    print("a later return:", *calls, sep="\n  ")
    assert calls == [
        # no token-check read: the worker's copy of the handle (Capabilities.returning); the ledger write decides
        ("put_if_match", f"quota/{hid}/returns.json"),  # count, bytes, tenant bytes, this upload's entry: one CAS
        ("put_bytes", f"returns/{hid}/RID/return.zip"),  # from memory: a small body with its Content-Length
        ("put_if_absent", f"returns/{hid}/RID/manifest.json"),  # visible, once
    ]
    # Nothing lists: the cost does not grow with the handle's returns.
    assert not [c for c in calls if c[0] == "list"]
    # A retry: answered 200 from the ledger and one HEAD of its manifest, nothing written.
    status, again = _post(client, storage, hid, token, zips[1])
    print("a retry:", *again, sep="\n  ")
    assert status == 200
    assert again == [("exists", f"returns/{hid}/RID/manifest.json")]
    ledger = json.loads(storage.inner.read_bytes(f"quota/{hid}/returns.json"))
    assert len(ledger["returns"]) == 3


def test_another_replica_writing_costs_one_read_more(served: tuple[FlaskClient, CountingStorage]) -> None:
    """The kept ledger copy is only a guess: a write by another process makes the conditional PUT fail, and the
    upload reads the ledger and writes again, counting what the other wrote."""
    client, storage = served
    hid, token, zips = _setup(client, storage, 3)
    assert _post(client, storage, hid, token, zips[0])[0] == 201
    key = f"quota/{hid}/returns.json"
    doc = json.loads(storage.inner.read_bytes(key))
    doc["returns"]["r-someoneelse"] = {"bytes": 10, "at": 1e12, "holders": ["x"]}
    storage.inner.put_bytes(key, json.dumps(doc).encode())  # as another replica would
    status, calls = _post(client, storage, hid, token, zips[1])
    assert status == 201
    assert [m for m, k in calls if k == key] == ["put_if_match", "read_tagged", "put_if_match"]
    after = json.loads(storage.inner.read_bytes(key))["returns"]
    assert "r-someoneelse" in after and len(after) == 3


def test_parallel_changes_share_ledger_writes(tmp_path: Path) -> None:
    """20 threads changing one ledger while the first write is held until all of them have arrived: every change
    lands exactly once, in a few conditional writes (group commit), not 20 in a row."""
    import threading

    from nbpack.store import ledger
    from nbpack.store.local import LocalStorage

    storage = CountingStorage(LocalStorage(tmp_path / "store"))
    real = storage.inner.put_if_match

    arrived, all_in = [0], threading.Event()
    count_lock = threading.Lock()

    def slow(key: str, data: bytes, tag: str | None) -> str | None:
        all_in.wait(30)  # the other threads queue meanwhile
        return real(key, data, tag)

    storage.inner.put_if_match = slow

    def add(i: int) -> None:
        def change(doc: dict[str, Any]) -> tuple[int, bool]:
            doc.setdefault("seen", []).append(i)
            return len(doc["seen"]), True

        with count_lock:
            arrived[0] += 1
            if arrived[0] == 20:
                all_in.set()
        results[i] = ledger.update(storage, "quota/x/returns.json", change)

    results: dict[int, int] = {}
    threads = [threading.Thread(target=add, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    seen = json.loads(storage.inner.read_bytes("quota/x/returns.json"))["seen"]
    assert sorted(seen) == list(range(20))  # each change once
    assert sorted(results.values()) == list(range(1, 21))  # each saw the changes before it in its batch
    writes = [c for c in storage.calls if c[0] == "put_if_match"]
    print(f"\n20 parallel changes: {len(writes)} conditional writes")
    assert len(writes) <= 6


def test_a_deleted_handle_stops_a_return_at_its_ledger_write(served: tuple[FlaskClient, CountingStorage]) -> None:
    """The worker answers return uploads from its copy of the handle; a DELETE on another replica (which this
    worker never hears of) buries the ledger first, so the next upload's conditional write fails, re-reads the
    tombstone and is refused 403 token_revoked with nothing stored or charged."""
    from nbpack.service import quota

    client, storage = served
    hid, token, zips = _setup(client, storage, 2)
    assert _post(client, storage, hid, token, zips[0])[0] == 201  # the worker now holds the handle
    inner = storage.inner
    quota.bury(inner, hid, "default")  # another replica's DELETE, step one (its own ledger module, another tag)
    inner.delete(f"handles/{hid}/handle.json")
    inner.delete_prefix(f"returns/{hid}/")
    inner.delete_prefix(f"tenants/default/usage/{hid}/")
    status, calls = _post(client, storage, hid, token, zips[1])
    print("\nan upload after a DELETE elsewhere:", *calls, sep="\n  ")
    assert status == 403
    assert not list(inner.list(f"returns/{hid}/")) and not list(inner.list(f"tenants/default/usage/{hid}/"))
    assert json.loads(inner.read_bytes(f"quota/{hid}/returns.json"))["deleted"]
    # The same worker's own DELETE: its memory is dropped at once, the token check itself refuses.
    hid2, token2, zips2 = _setup(client, storage, 2)
    assert _post(client, storage, hid2, token2, zips2[0])[0] == 201
    assert client.delete(f"/api/v1/bundles/{hid2}", headers=AUTH).status_code in (200, 204)
    assert _post(client, storage, hid2, token2, zips2[1])[0] == 403


def test_tenant_usage_counts_returns_charged_in_the_ledger(served: tuple[FlaskClient, CountingStorage]) -> None:
    """Without a tenant quota a return has no usage marker of its own; the tenant's bytes still count it (through
    the handle's ledger.0 marker), so a quota configured later sees every stored return."""
    from nbpack.service import quota

    client, storage = served
    hid, token, zips = _setup(client, storage, 2)
    before = quota.tenant_usage(storage.inner, "default")
    for body in zips:
        assert _post(client, storage, hid, token, body)[0] == 201
    assert quota.tenant_usage(storage.inner, "default") == before + sum(len(z) for z in zips)
    assert not [k for m, k in storage.calls if k.startswith("tenants/") and m == "put_bytes"]


def test_gc_sweeps_what_an_upload_racing_a_delete_left(served: tuple[FlaskClient, CountingStorage]) -> None:
    """An upload that reserved just before the DELETE writes its zip and manifest after the delete swept: gc removes
    them with the tombstone once it is older than PENDING_STALE (and not before)."""
    import os
    import time

    from nbpack.service import gc, quota

    client, storage = served
    hid, token, zips = _setup(client, storage, 1)
    svc = client.application.extensions["nbpack"]
    assert client.delete(f"/api/v1/bundles/{hid}", headers=AUTH).status_code in (200, 204)
    inner = storage.inner
    leftover = f"returns/{hid}/r-0123456789abcdef01234567/manifest.json"
    inner.put_bytes(leftover, b"{}")  # what the racing upload wrote after the delete
    inner.put_bytes(f"tenants/default/usage/{hid}/r-x.abcdef012345.10", b"")
    assert gc.collect(svc).returns == []  # the tombstone is fresh: an upload may still be writing
    assert inner.exists(leftover)
    old = time.time() - quota.PENDING_STALE - 60
    os.utime(inner.root / f"quota/{hid}/returns.json", (old, old))
    report = gc.collect(svc)
    assert report.returns == [f"{hid}/*"]
    assert not inner.exists(leftover) and not inner.exists(f"quota/{hid}/returns.json")
    assert not list(inner.list(f"tenants/default/usage/{hid}/"))
