"""The files URL's handle check without a storage read per Range request (issue 23), revocation still immediate.

A lazy catalog read sends tens of Range requests to the files URL in a second; each checks the git token against
the handle. A worker remembers a handle it checked for one second (``nbpack/service/recent.py``): a burst costs one
``handle.json`` read. A DELETE forgets it in that worker and marks it for every worker of the replica (a file in the
cache folder), so the next request is refused at once; a replica that never saw the delete (its own cache folder)
refuses within the second. The clock is injected: nothing sleeps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from nbpack import clock
from nbpack.service.core import Service
from nbpack.service.recent import TTL
from nbpack.store.local import LocalStorage
from server import create_app
from tests.helpers import APP_API_KEY, make_config
from tests.unit.test_service_reads import CountingStorage

AUTH = {"X-API-Key": APP_API_KEY}


class Clock:
    def __init__(self) -> None:
        self.t = 2_000_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def fake_clock() -> Any:
    c = Clock()
    with clock.use(c):
        yield c


def _worker(tmp_path: Path, cache: str) -> tuple[FlaskClient, CountingStorage]:
    """One service process: the shared store, its own cache folder (same name = same replica)."""
    cfg = make_config(tmp_path, cache_dir=str(tmp_path / cache))
    counting = CountingStorage(LocalStorage(tmp_path / "store"))
    return create_app({"TESTING": True}, service=Service(cfg, counting)).test_client(), counting


def _bundle(client: FlaskClient) -> tuple[str, str]:
    """A handle and the files URL of its catalog."""
    created = client.post(
        "/api/v1/bundles",
        json={"title": "Burst", "catalogs": [{"name": "c", "rows": [{"id": 2**53 + 1, "name": "é, ✓", "x": None}]}]},
        headers=AUTH,
    ).get_json()
    manifest = client.get(f"/api/v1/bundles/{created['id']}", headers=AUTH).get_json()
    return created["id"], created["links"]["files"].removeprefix("http://localhost") + manifest["catalogs"][0]["path"]


def _get(client: FlaskClient, url: str, start: int = 0) -> int:
    resp = client.get(url, headers={"Range": f"bytes={start}-{start + 3}"})
    resp.get_data()
    return resp.status_code


def test_a_burst_of_range_requests_reads_the_handle_once(tmp_path: Path, fake_clock: Clock) -> None:
    client, storage = _worker(tmp_path, "cache-a")
    hid, url = _bundle(client)
    state = f"handles/{hid}/handle.json"
    storage.reads.clear()
    assert [_get(client, url, i) for i in range(20)] == [206] * 20
    assert storage.reads[state] == 1
    fake_clock.t += TTL + 0.5  # a second later the handle is read again
    assert _get(client, url) == 206 and storage.reads[state] == 2


def test_a_delete_refuses_the_next_request_in_every_worker_of_the_replica(tmp_path: Path, fake_clock: Clock) -> None:
    one, _ = _worker(tmp_path, "cache-a")
    two, _ = _worker(tmp_path, "cache-a")  # another worker process of the same replica
    hid, url = _bundle(one)
    assert _get(one, url) == _get(two, url) == 206  # both remember the handle now
    assert one.delete(f"/api/v1/bundles/{hid}", headers=AUTH).status_code == 204
    # Same instant: neither answers from memory.
    for client in (one, two):
        resp = client.get(url, headers={"Range": "bytes=0-3"})
        assert resp.status_code == 403 and resp.get_json()["error"] == "token_revoked"


def test_another_replica_refuses_within_the_ttl(tmp_path: Path, fake_clock: Clock) -> None:
    one, _ = _worker(tmp_path, "cache-a")
    other, _ = _worker(tmp_path, "cache-b")  # another replica: its own cache folder, never saw the delete
    hid, url = _bundle(one)
    assert _get(other, url) == 206
    assert one.delete(f"/api/v1/bundles/{hid}", headers=AUTH).status_code == 204
    fake_clock.t += TTL
    assert _get(other, url) == 403


def test_an_expired_handle_is_never_answered_from_memory(tmp_path: Path, fake_clock: Clock) -> None:
    client, _ = _worker(tmp_path, "cache-a")
    hid, url = _bundle(client)
    expires = client.get(f"/api/v1/bundles/{hid}", headers=AUTH).get_json()["handle"]["expires"]
    assert _get(client, url) == 206
    fake_clock.t = clock.parse_iso(expires).timestamp()  # its last instant has passed; the memory is fresh
    assert _get(client, url) == 403
