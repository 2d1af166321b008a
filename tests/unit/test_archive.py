"""Hostile zips against nbpack.bundle.archive: each is refused with UnsafeArchive and leaves nothing behind."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from nbpack.bundle import archive
from nbpack.errors import NbpackError, UnsafeArchive


def make_zip(
    entries: list[tuple[str, bytes]],
    tweak: Callable[[zipfile.ZipFile], None] | None = None,
    method: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """A zip of (name, data) entries; ``tweak`` edits the central directory records before they are written."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names warn
        with zipfile.ZipFile(buf, "w", method) as zf:
            for name, data in entries:
                zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data, method)
            if tweak:
                tweak(zf)
    return buf.getvalue()


def refused(data: bytes, tmp_path: Path, match: str, limits: archive.Limits = archive.DEFAULT_LIMITS) -> None:
    """The archive is refused either on open or on extract, and the target folder gets nothing."""
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeArchive, match=match):
        with archive.open_zip(io.BytesIO(data), limits) as zf:
            archive.extract(zf, dest)
    assert list(dest.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest"], "no staging folder left behind"


def test_good_zip_extracts(tmp_path: Path) -> None:
    data = make_zip([("a.txt", b"hello"), ("sub/b.bin", os.urandom(3000)), ("sub/dir/", b"")])
    with archive.open_zip(io.BytesIO(data)) as zf:
        written = archive.extract(zf, tmp_path / "new")
        assert archive.read_member(zf, "a.txt") == b"hello"
        assert archive.member_sha256(zf, zf.getinfo("a.txt")) == (
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        )
    assert sorted(p.relative_to(tmp_path / "new").as_posix() for p in written) == ["a.txt", "sub/b.bin"]
    assert (tmp_path / "new" / "a.txt").read_bytes() == b"hello"
    assert stat.S_IMODE((tmp_path / "new" / "a.txt").stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]


def test_extract_into_existing_folder_keeps_its_files(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep")
    with archive.open_zip(io.BytesIO(make_zip([("a.txt", b"x")]))) as zf:
        archive.extract(zf, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt", "mine.txt"]
    with archive.open_zip(io.BytesIO(make_zip([("b.txt", b"y"), ("mine.txt", b"evil")]))) as zf:
        with pytest.raises(UnsafeArchive, match="already exists"):
            archive.extract(zf, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt", "mine.txt"]
    assert (dest / "mine.txt").read_text() == "keep"


@pytest.mark.parametrize(
    "name",
    [
        "../evil.txt",
        "a/../../evil.txt",
        "a/..",
        "/etc/passwd",
        "C:evil.txt",
        "c:/evil.txt",
        "a\\..\\evil.txt",
        "\\evil.txt",
        "a//b",
        "./a",
        "",
    ],
)
def test_unsafe_names_refused(tmp_path: Path, name: str) -> None:
    refused(make_zip([("ok.txt", b"fine"), (name, b"evil")]), tmp_path, "archive entry")
    assert not (tmp_path.parent / "evil.txt").exists()


@pytest.mark.parametrize("kind", [stat.S_IFLNK, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK])
@pytest.mark.parametrize("system", [3, 0])
def test_links_and_special_files_refused(tmp_path: Path, kind: int, system: int) -> None:
    def link(zf: zipfile.ZipFile) -> None:
        info = zf.filelist[-1]
        info.create_system, info.external_attr = system, (kind | 0o777) << 16

    refused(make_zip([("ok.txt", b"fine"), ("link", b"/etc/passwd")], link), tmp_path, "link or special")


def test_tar_with_hardlink_and_symlink_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        body = tarfile.TarInfo("a.txt")
        body.size = 2
        tf.addfile(body, io.BytesIO(b"hi"))
        for name, kind in (("hard", tarfile.LNKTYPE), ("soft", tarfile.SYMTYPE)):
            link = tarfile.TarInfo(name)
            link.type, link.linkname = kind, "/etc/passwd"
            tf.addfile(link)
    refused(buf.getvalue(), tmp_path, "not a readable zip")


@pytest.mark.parametrize(
    "data",
    [b"", b"hello", b"PK\x03\x04" + b"\0" * 40, b"PK\x05\x06" + b"\0" * 18],
    ids=["empty", "text", "local-header-only", "bare-end-record"],
)
def test_not_zips_refused(tmp_path: Path, data: bytes) -> None:
    if data.startswith(b"PK\x05\x06"):
        # An empty zip is a valid zip with nothing in it: opening it works, extracting writes nothing.
        with archive.open_zip(io.BytesIO(data)) as zf:
            assert archive.extract(zf, tmp_path / "d") == []
        return
    refused(data, tmp_path, "not a readable zip")


def test_missing_path_and_folder_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafeArchive):
        archive.open_zip(tmp_path)
    with pytest.raises(UnsafeArchive):
        archive.open_zip(tmp_path / "nope.zip")


@pytest.mark.parametrize(
    "entries",
    [
        [("a.txt", b"1"), ("a.txt", b"2")],
        [("d/", b""), ("d", b"2")],
        [("a", b"1"), ("a/b", b"2")],
    ],
    ids=["same-name", "dir-and-file", "file-under-file"],
)
def test_duplicate_and_clashing_names_refused(tmp_path: Path, entries: list[tuple[str, bytes]]) -> None:
    refused(make_zip(entries), tmp_path, "twice|under a file")


def test_classic_ratio_bomb_refused(tmp_path: Path) -> None:
    data = make_zip([("ok.txt", b"fine"), ("zeros", bytes(16 << 20))])
    assert len(data) < 64 << 10
    refused(data, tmp_path, "expands")


def test_overlapping_entries_bomb_refused(tmp_path: Path) -> None:
    # Fifield's non-recursive bomb: many central records pointing into one compressed stream.
    def overlap(zf: zipfile.ZipFile) -> None:
        first = zf.filelist[0]
        for i in range(50):
            clone = zipfile.ZipInfo(f"copy{i}", first.date_time)
            for attr in ("compress_type", "CRC", "compress_size", "file_size", "header_offset", "external_attr"):
                setattr(clone, attr, getattr(first, attr))
            zf.filelist.append(clone)

    data = make_zip([("kernel", bytes(1 << 20))], overlap)
    refused(data, tmp_path, "overlaps")


def test_too_many_entries_and_oversize_members_refused(tmp_path: Path) -> None:
    data = make_zip([(f"f{i}", b"x") for i in range(6)])
    refused(data, tmp_path, "6 entries", archive.Limits(max_entries=5))
    (tmp_path / "dest").rmdir()
    refused(make_zip([("big", os.urandom(2000))]), tmp_path, "2000 bytes", archive.Limits(max_member=1000))
    (tmp_path / "dest").rmdir()
    total = make_zip([(f"f{i}", os.urandom(600)) for i in range(3)])
    refused(total, tmp_path, "more than 1500", archive.Limits(max_total=1500))


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
@pytest.mark.parametrize("delta", [-100, 100])
def test_members_lying_about_their_size_refused(tmp_path: Path, method: int, delta: int) -> None:
    def lie(zf: zipfile.ZipFile) -> None:
        zf.filelist[-1].file_size += delta

    data = make_zip([("ok.txt", b"fine"), ("liar", os.urandom(1000))], lie, method)
    refused(data, tmp_path, "corrupt|than it declares")
    with archive.open_zip(io.BytesIO(data)) as zf:
        with pytest.raises(UnsafeArchive):
            archive.read_member(zf, "liar")
        with pytest.raises(UnsafeArchive):
            archive.member_sha256(zf, zf.getinfo("liar"))


@pytest.mark.parametrize("bits", [0x1, 0x40, 0x41])
def test_encrypted_members_refused(tmp_path: Path, bits: int) -> None:
    def encrypt(zf: zipfile.ZipFile) -> None:
        zf.filelist[-1].flag_bits |= bits

    refused(make_zip([("ok.txt", b"fine"), ("secret", b"data")], encrypt), tmp_path, "encrypted")


def test_unknown_compression_method_refused(tmp_path: Path) -> None:
    def aes(zf: zipfile.ZipFile) -> None:
        zf.filelist[-1].compress_type = 99

    refused(make_zip([("ok.txt", b"fine"), ("x", b"data")], aes, zipfile.ZIP_STORED), tmp_path, "compression")


def test_truncated_zips_refused_at_every_cut(tmp_path: Path) -> None:
    data = make_zip([("a.txt", b"hello" * 50), ("b.bin", os.urandom(500))])
    cuts = range(0, len(data) - 1, 7)
    for cut in cuts:
        dest = tmp_path / f"cut{cut}"
        dest.mkdir()
        with pytest.raises(UnsafeArchive):
            with archive.open_zip(io.BytesIO(data[:cut])) as zf:
                archive.extract(zf, dest)
        assert list(dest.iterdir()) == [], f"cut at {cut} left files"
    assert len(cuts) > 50


def test_corrupt_second_member_leaves_nothing(tmp_path: Path) -> None:
    data = bytearray(make_zip([("a.txt", b"first member is fine"), ("b.txt", b"B" * 2000)], method=zipfile.ZIP_STORED))
    at = data.index(b"B" * 50)  # stored data of b.txt
    data[at + 10] ^= 0xFF
    refused(bytes(data), tmp_path, "corrupt")


def test_every_refusal_is_an_nbpack_error() -> None:
    assert issubclass(UnsafeArchive, NbpackError)
    assert UnsafeArchive("x").http_status == 400
