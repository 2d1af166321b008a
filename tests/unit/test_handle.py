"""nbpack/service/handle.py: ``handle.json`` round trips (keys a newer writer added kept), and ``load`` answers a
missing, expired or other tenant's handle alike."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from nbpack.clock import iso, now
from nbpack.errors import NotFound
from nbpack.ids import new_handle_id
from nbpack.service.handle import Handle, load, save
from nbpack.store.backends import Storage, open_storage
from nbpack.store.keys import HANDLE, handle_key
from tests.conftest import FakeClock


def _handle(expires_in: float = 3600, **changes: object) -> Handle:
    doc = {
        "id": new_handle_id(),
        "tenant": "default",
        "owner": "ann, é",
        "content_id": "b-0123456789abcdef01234567",
        "title": "t",
        "nonce": "n1",
        "created": iso(now()),
        "created_ms": 2**53 + 1,
        "expires": iso(now() + timedelta(seconds=expires_in)),
        "callback_url": None,
        "bytes": 30,
        "parts": [["content/a", 10], ["content/b", 20]],
        **changes,
    }
    return Handle.from_json(doc)


@pytest.fixture
def storage() -> Storage:
    return open_storage(f"memory://handle-{uuid.uuid4().hex}")


def test_handle_json_round_trips_and_keeps_unknown_keys(storage: Storage, clock: FakeClock) -> None:
    handle = _handle(future_key={"added": "later"})
    save(storage, handle)
    doc = json.loads(storage.read_bytes(handle_key(handle.id, HANDLE)))
    assert doc["future_key"] == {"added": "later"} and doc["created_ms"] == 2**53 + 1
    loaded = load(storage, handle.id)
    assert loaded == handle and loaded.extra == {"future_key": {"added": "later"}}
    assert loaded.size == 30 and loaded.parts == (("content/a", 10), ("content/b", 20))
    assert set(loaded.summary()) == {"id", "content_id", "title", "owner", "created", "expires", "bytes"}


def test_expiry_is_read_from_the_clock(storage: Storage, clock: FakeClock) -> None:
    handle = _handle(expires_in=60)
    save(storage, handle)
    assert not handle.expired() and load(storage, handle.id) == handle
    clock.advance(60)  # expired at exactly its expiry instant
    assert handle.expired()
    with pytest.raises(NotFound, match=f"no such bundle {handle.id}"):
        load(storage, handle.id)


def test_another_tenants_handle_answers_like_a_missing_one(storage: Storage, clock: FakeClock) -> None:
    handle = _handle(tenant="a")
    save(storage, handle)
    assert load(storage, handle.id, tenant="a") == handle
    with pytest.raises(NotFound) as other:
        load(storage, handle.id, tenant="b")
    missing = new_handle_id()
    with pytest.raises(NotFound) as absent:
        load(storage, missing)
    assert str(other.value) == f"no such bundle {handle.id}" and str(absent.value) == f"no such bundle {missing}"


@pytest.mark.parametrize("bad", ["../etc/passwd", "h-", "H-" + "0" * 24, "h-0123\n", ""])
def test_a_malformed_id_names_nothing(storage: Storage, bad: str) -> None:
    with pytest.raises(NotFound, match="no such bundle"):
        load(storage, bad)
