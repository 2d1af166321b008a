"""nbpack/bundle/text_encoding.py: codecs by name, and the error that names the first line that is not UTF-8."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbpack.bundle.text_encoding import codec_name, not_utf8
from nbpack.errors import InvalidTable


def test_codec_names_are_python_s_and_unknown_ones_are_refused() -> None:
    assert codec_name("t.csv", "Latin-1") == "iso8859-1"
    assert codec_name("t.csv", "UTF8") == "utf-8"
    with pytest.raises(InvalidTable, match=r"t\.csv: unknown text encoding 'klingon'"):
        codec_name("t.csv", "klingon")


def test_the_first_line_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "stars, 2026.csv"
    path.write_bytes("id,name\n1,Étoile\n".encode() + "2,Ærø\n".encode("latin-1"))
    err = not_utf8(path)
    assert isinstance(err, InvalidTable) and "\n" not in str(err)
    assert str(err).startswith("stars, 2026.csv is not UTF-8 text at line 3 (byte 0xc6)")
    assert "--encoding latin-1" in str(err)


def test_a_bad_byte_past_the_first_mebibyte_counts_lines_across_chunks(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    line = "é,x\n".encode()  # two-byte characters: a chunk boundary may split one
    rows = (1 << 20) // len(line) + 10
    path.write_bytes(line * rows + b"\xff\n")
    assert f"at line {rows + 1} (byte 0xff)" in str(not_utf8(path))


def test_a_file_that_is_utf8_after_all_names_no_line(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text("a\nb\n", encoding="utf-8")
    assert str(not_utf8(path)).startswith("ok.csv is not UTF-8 text: give its encoding")
