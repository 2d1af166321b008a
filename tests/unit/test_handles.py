"""Handles in process: orphan blobs older than the presign window collected (the return-id rule, defined once in the
runtime, is tested in test_vocab.py). Handles over gunicorn and SeaweedFS are in tests/integration/test_handles.py."""

from __future__ import annotations

import json
import os
import time

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from nbpack.service.core import Service
from nbpack.service.gc import collect
from nbpack.service.handles import CreateRequest
from tests.helpers import make_config


def test_orphan_blobs_older_than_the_presign_window_are_collected(tmp_path):
    cfg = make_config(tmp_path)
    svc = Service(cfg)
    built = tmp_path / "b.zip"
    build_bundle(BuildSpec(title="Blobs", catalogs=[CatalogInput("t", [{"a": 1}])]), built)
    hid = svc.handles.store(built, CreateRequest("http://127.0.0.1:9")).id
    orphan_old, orphan_new, kept = (f"blobs/{hid}/{c * 64}" for c in "abc")
    for key in (orphan_old, orphan_new, kept):
        svc.storage.put_bytes(key, b"output bytes")
    svc.storage.put_bytes(
        f"returns/{hid}/r-{'1' * 24}/external.json", json.dumps({"outputs/x": {"key": kept, "bytes": 12}}).encode()
    )
    hour_ago = time.time() - 3600  # older than the 15 min presign window + 5 min
    for key in (orphan_old, kept):
        os.utime(tmp_path / "store" / key, (hour_ago, hour_ago))
    assert collect(svc, dry_run=True).blobs == [orphan_old]
    assert svc.storage.exists(orphan_old)
    assert collect(svc).blobs == [orphan_old]
    assert not svc.storage.exists(orphan_old) and svc.storage.exists(orphan_new) and svc.storage.exists(kept)


def test_a_pushed_bundle_is_opened_with_the_limits_max_bundle_bytes_allows(tmp_path, monkeypatch):
    # A 10 GiB catalog (one member over the 8 GiB default) was refused on push whatever NBPACK_MAX_BUNDLE_BYTES
    # said: the check and the copy with the returns section each opened the zip with the default limits.
    from nbpack.bundle import archive

    seen: list[int] = []
    check = archive._check
    monkeypatch.setattr(archive, "_check", lambda zf, limits: (seen.append(limits.max_member), check(zf, limits)))
    cfg = make_config(tmp_path, max_bundle_bytes=str(20 << 30))
    built = tmp_path / "b.zip"
    build_bundle(BuildSpec(title="Big push", catalogs=[CatalogInput("t", [{"a": 1}])]), built)
    seen.clear()
    Service(cfg).handles.store(built, CreateRequest("http://127.0.0.1:9"))
    assert seen and set(seen) == {20 << 30}, seen
