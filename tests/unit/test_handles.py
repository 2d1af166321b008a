"""Handles in process: one return-id rule in the runtime and the service, orphan blobs older than the presign window
collected. Handles over gunicorn and SeaweedFS are in tests/integration/test_handles.py."""

from __future__ import annotations

import json
import os
import secrets
import time

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from nbpack.bundle.returns import return_id_for
from nbpack.config import load_config
from nbpack.service.core import Service
from nbpack.service.gc import collect
from tests.helpers import load_runtime_package, unload_runtime

KEY_A = "key-prod-" + secrets.token_hex(8)
SECRET = secrets.token_urlsafe(32)


def test_return_id_one_rule_in_runtime_and_service(tmp_path):
    manifest = {
        "bundle_id": "b-" + "1" * 24,
        "contents": [{"path": "a.ipynb", "sha256": "0" * 64, "bytes": 1}],
        "status": "completed",
        "error": None,
        "started": "2026-01-01T00:00:00Z",
        "ended": "2026-01-01T00:00:01Z",
        "notebook": "a.ipynb",
        "values": [{"name": "n", "encoder": "json", "data": 2**63 + 1}],
        "provenance": {"python": "3", "host": "é"},
    }
    rt = load_runtime_package("nbpack_runtime_copy")  # the copy that goes into bundles, as a bundle imports it
    try:
        rid = rt.return_id(manifest["bundle_id"], [("a.ipynb", "0" * 64)], manifest)
    finally:
        unload_runtime("nbpack_runtime_copy")
    assert rid == return_id_for(manifest)
    for field, value in (("values", []), ("status", "failed"), ("ended", "2026-01-01T00:00:02Z")):
        assert return_id_for({**manifest, field: value}) != rid, field


def test_orphan_blobs_older_than_the_presign_window_are_collected(tmp_path):
    cfg = load_config(
        env={},
        overrides={
            "public_url": "http://localhost",
            "storage": str(tmp_path / "store"),
            "secret_key": SECRET,
            "api_keys": KEY_A,
            "cache_dir": str(tmp_path / "cache"),
        },
    )
    svc = Service(cfg)
    built = tmp_path / "b.zip"
    build_bundle(BuildSpec(title="Blobs", catalogs=[CatalogInput("t", [{"a": 1}])]), built)
    hid = svc.handles.store(built, "http://127.0.0.1:9").id
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
