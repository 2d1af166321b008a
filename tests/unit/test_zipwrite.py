"""nbpack/bundle/zipwrite.py: the reproducible zip (manifest first, sorted, fixed times and modes, stored vs
deflated by suffix), written atomically, and the ``contents`` list with its digest cache."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import pytest

from nbpack.bundle.zipwrite import atomic_zip, contents_of, file_sha256, stat_key, write_zip


def _stage(root: Path) -> Path:
    stage = root / "stage"
    (stage / "catalogs").mkdir(parents=True)
    (stage / "nbpack.json").write_text("{}")
    (stage / "a, é.txt").write_text("comma and accent")
    (stage / "catalogs" / "t.parquet").write_bytes(b"PAR1" + b"\0" * 100)
    (stage / "Z.ipynb").write_text("{}")
    return stage


def test_the_zip_is_reproducible_manifest_first_sorted_fixed(tmp_path: Path) -> None:
    stage = _stage(tmp_path)
    write_zip(stage, tmp_path / "one.zip")
    os.utime(stage / "Z.ipynb", (0, 0))  # a different mtime must not change a byte
    write_zip(stage, tmp_path / "two.zip")
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "one.zip") as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == ["nbpack.json", "Z.ipynb", "a, é.txt", "catalogs/t.parquet"]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    methods = {i.filename: i.compress_type for i in infos}
    assert methods["catalogs/t.parquet"] == zipfile.ZIP_STORED and methods["a, é.txt"] == zipfile.ZIP_DEFLATED


def test_record_keys_cover_every_member_but_the_manifest(tmp_path: Path) -> None:
    keys = write_zip(_stage(tmp_path), tmp_path / "b.zip")
    assert sorted(keys) == ["Z.ipynb", "a, é.txt", "catalogs/t.parquet"]
    assert len(set(keys.values())) == 3


def test_a_stream_that_cannot_seek_still_gets_a_valid_zip_without_keys(tmp_path: Path) -> None:
    class OneWay(io.BytesIO):
        def seekable(self) -> bool:
            return False

    out = OneWay()
    keys = atomic_zip(out, lambda zf, records: zf.writestr("x", b"y"))
    assert keys == {}
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as zf:
        assert zf.read("x") == b"y"


def test_a_failed_fill_leaves_neither_the_target_nor_a_temp_file(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "b.zip"
    out.parent.mkdir()
    out.write_bytes(b"the old bundle")

    def fill(zf: zipfile.ZipFile, records: object) -> None:
        zf.writestr("half", b"written")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError, match="disk gone"):
        atomic_zip(out, fill)
    assert out.read_bytes() == b"the old bundle"  # replaced only on success
    assert sorted(p.name for p in out.parent.iterdir()) == ["b.zip"]


def test_a_file_in_place_of_the_folder_is_not_a_directory_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        atomic_zip(tmp_path / "file" / "b.zip", lambda zf, records: None)


def test_contents_lists_all_but_the_manifest_and_caches_digests(tmp_path: Path) -> None:
    stage = _stage(tmp_path)
    known: dict[tuple[str, int, int], str] = {}
    listed = contents_of(stage, known)
    assert [e["path"] for e in listed] == ["Z.ipynb", "a, é.txt", "catalogs/t.parquet"]
    text = (stage / "a, é.txt").read_bytes()
    assert listed[1] == {"path": "a, é.txt", "bytes": len(text), "sha256": hashlib.sha256(text).hexdigest()}
    assert stat_key(stage, "a, é.txt") in known
    # The cache is keyed by (path, size, mtime): a poisoned entry for the current stat is believed, as designed,
    # and a changed file (new size) is hashed again.
    known[stat_key(stage, "Z.ipynb")] = "0" * 64
    assert contents_of(stage, known)[0]["sha256"] == "0" * 64
    (stage / "Z.ipynb").write_text('{"changed": true}')
    assert contents_of(stage, known)[0]["sha256"] == file_sha256(stage / "Z.ipynb") != "0" * 64
