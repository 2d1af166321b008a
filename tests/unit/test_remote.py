"""nbpack/bundle/remote.py: which catalogs a thin git tree leaves out, and the ``nbpack.remote.json`` it writes."""

from __future__ import annotations

import json

from nbpack.bundle import remote


def test_catalogs_at_or_over_the_threshold_stay_out() -> None:
    rem = remote.Remote("https://svc/files/tok/h-" + "1" * 24 + "/", 1000)
    manifest = {
        "catalogs": [
            {"path": "catalogs/z, ü.parquet"},
            {"path": "catalogs/a.parquet"},
            {"path": "catalogs/small.parquet"},
            {"path": "catalogs/missing.parquet"},  # listed but absent from the zip: never left out
            {"path": None},
            "not a dict",
        ]
    }
    sizes = {"catalogs/z, ü.parquet": 1000, "catalogs/a.parquet": 2**53 + 1, "catalogs/small.parquet": 999}
    assert rem.lazy_paths(manifest, sizes) == ["catalogs/a.parquet", "catalogs/z, ü.parquet"]
    assert remote.Remote(rem.files, 0).lazy_paths(manifest, sizes) == []  # threshold 0: nothing left out
    for odd in ({}, {"catalogs": None}, {"catalogs": "catalogs/a.parquet"}):
        assert rem.lazy_paths(odd, sizes) == []


def test_the_document_is_the_same_bytes_for_the_same_handle() -> None:
    rem = remote.Remote("https://svc/files/tok/h-" + "2" * 24 + "/", 10)
    one = rem.document(["b.parquet", "a.parquet"])
    assert one == rem.document(["a.parquet", "b.parquet"]) and one.endswith(b"\n")
    assert json.loads(one) == {remote.FILES: rem.files, remote.LAZY: ["a.parquet", "b.parquet"]}
    assert remote.REMOTE_FILE == "nbpack.remote.json"
