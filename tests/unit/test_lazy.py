"""Lazy catalogs in process: a small catalog's block digests are one short block. Reading catalogs lazily from a
served bundle is in tests/integration/test_lazy.py."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pyarrow as pa

from nbpack.bundle import catalog
from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle


def test_digests_of_a_small_catalog_are_one_short_block(tmp_path: Path) -> None:
    manifest = build_bundle(
        BuildSpec(title="Small", catalogs=[CatalogInput("t", pa.table({"a": [1, 2]}))]), tmp_path / "s.zip"
    )
    with zipfile.ZipFile(tmp_path / "s.zip") as zf:
        data, blocks = zf.read("catalogs/t.parquet"), zf.read("catalogs/t.parquet.blocks")
    assert len(data) < catalog.BLOCK_SIZE and blocks == hashlib.sha256(data).digest()
    assert manifest["catalogs"][0]["blocks"]["path"] == "catalogs/t.parquet.blocks"
