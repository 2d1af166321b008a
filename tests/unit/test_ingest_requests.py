"""Storage requests per small return (issue 23): the quota and "already stored" come from the handle's ledger, one
conditional write, not from listings that grow with the handle's returns.

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
    for body in zips[1:3]:
        status, calls = _post(client, storage, hid, token, body)
        assert status == 201
    print("a later return:", *calls, sep="\n  ")
    assert calls == [
        ("read_bytes", f"handles/{hid}/handle.json"),  # the token check (one per request, issue 22)
        ("put_if_match", f"quota/{hid}/returns.json"),  # count, bytes and this upload's entry: one conditional PUT
        ("put_bytes", f"tenants/default/usage/{hid}/RID.NONCE.{len(body)}"),  # the tenant's bytes
        ("put_file", f"returns/{hid}/RID/return.zip"),
        ("put_if_absent", f"returns/{hid}/RID/manifest.json"),  # visible, once
        ("exists", f"handles/{hid}/handle.json"),  # not deleted meanwhile
    ]
    # Nothing lists: the cost does not grow with the handle's returns.
    assert not [c for c in calls if c[0] == "list"]
    # A retry: answered 200 from the ledger and one HEAD of its manifest, nothing written.
    status, again = _post(client, storage, hid, token, zips[1])
    print("a retry:", *again, sep="\n  ")
    assert status == 200
    assert again == [
        ("read_bytes", f"handles/{hid}/handle.json"),
        ("exists", f"returns/{hid}/RID/manifest.json"),
    ]
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
