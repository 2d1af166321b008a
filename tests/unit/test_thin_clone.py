"""Thin clone (issue 13) in process: the lazy threshold's config, the ranged reader a cold build reads a stored zip
through (any range, only the parts zipfile needs, a short part refused), and the remote document's words the same on
both sides of the wall. Real git and S3 are in tests/integration/test_thin_clone.py."""

from __future__ import annotations

import io
import json
import os
import random
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbpack.config import load_config
from nbpack.errors import InvalidInput
from nbpack.store.zipparts import RangedParts, split_zip
from tests.helpers import APP_SECRET

MB = 1 << 20


def test_lazy_min_bytes_config_is_checked():
    assert (
        load_config({}, {"storage": "x", "secret_key": APP_SECRET, "public_url": "http://h"}).lazy_min_bytes == 4 * MB
    )
    with pytest.raises(InvalidInput, match="NBPACK_LAZY_MIN_BYTES"):
        load_config({"NBPACK_LAZY_MIN_BYTES": "-1"}, {"storage": "x", "secret_key": APP_SECRET, "public_url": "h"})


def zip_with(path: Path, members: dict[str, bytes], manifest: dict[str, Any]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("nbpack.json", json.dumps(manifest))
        for name, data in sorted(members.items()):
            zf.writestr(name, data, zipfile.ZIP_STORED if name.endswith(".parquet") else zipfile.ZIP_DEFLATED)


def _parts_of(path: Path) -> tuple[list[tuple[str, int]], dict[str, bytes]]:
    data = path.read_bytes()
    segs = split_zip(path)
    objects = {f"k{i}": data[s.offset : s.offset + s.size] for i, s in enumerate(segs)}
    return [(f"k{i}", s.size) for i, s in enumerate(segs)], objects


def test_ranged_reader_reads_any_range_and_only_the_parts_zipfile_needs(tmp_path):
    zip_with(
        tmp_path / "z.zip",
        {"catalogs/big.parquet": os.urandom(3 * MB), "a.txt": b"a" * 70000, "b.txt": b"hello"},
        {"id": "b-" + "4" * 24},
    )
    parts, objects = _parts_of(tmp_path / "z.zip")
    whole = (tmp_path / "z.zip").read_bytes()
    requests: list[tuple[str, int, int]] = []

    def chunks(key: str, start: int, end: int) -> Iterator[bytes]:
        requests.append((key, start, end))
        blob = objects[key][start : end + 1]
        for i in range(0, len(blob), 4096):
            yield blob[i : i + 4096]

    reader = io.BufferedReader(RangedParts([*parts[:1], ("empty", 0), *parts[1:]], chunks), 1 << 16)
    with zipfile.ZipFile(reader) as zf:
        assert zf.read("b.txt") == b"hello" and len(zf.read("a.txt")) == 70000
    big_key = next(k for k, size in parts if size > 3 * MB)
    assert big_key not in {key for key, _, _ in requests}
    assert "empty" not in {key for key, _, _ in requests}
    rng = random.Random(0)
    raw = RangedParts(parts, chunks)
    for _ in range(300):
        start, n = rng.randrange(len(whole) + 10), rng.randrange(1, 200000)
        raw.seek(start)
        got = bytearray()
        while len(got) < n and (piece := raw.read(n - len(got))):
            got += piece
        assert bytes(got) == whole[start : start + n]
    raw.seek(-5, io.SEEK_END)
    assert raw.read(10) == whole[-5:] and raw.tell() == len(whole)


def test_ranged_reader_refuses_a_short_part(tmp_path):
    zip_with(tmp_path / "z.zip", {"catalogs/big.parquet": os.urandom(MB)}, {"id": "b-" + "5" * 24})
    parts, objects = _parts_of(tmp_path / "z.zip")
    big_key = next(k for k, size in parts if size > MB)
    objects[big_key] = objects[big_key][: MB // 2]
    reader = io.BufferedReader(RangedParts(parts, lambda key, s, e: iter([objects[key][s : e + 1]])), 1 << 16)
    with zipfile.ZipFile(reader) as zf, pytest.raises(OSError, match="ended"):
        zf.read("catalogs/big.parquet")
