"""nbpack/store/disposition.py: the one Content-Disposition rule of downloads (service responses, presigned GETs)."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from nbpack.store.disposition import content_disposition


@pytest.mark.parametrize(
    "name, fallback",
    [
        ("bundle.zip", "bundle.zip"),
        ('a"b é.zip', "a_b e.zip"),  # a quote would end the value; é folds to e
        ("dir/sub\\x.zip", "dir_sub_x.zip"),  # never a path
        ("tab\there\r\n.zip", "tab_here__.zip"),  # control characters never reach the header
        ("spectra, 2026 (naïve).fits", "spectra, 2026 (naive).fits"),
        ("日本語.json", "___.json"),
        ("", "download"),
    ],
)
def test_header_is_latin1_with_an_ascii_fallback_and_the_exact_name(name: str, fallback: str) -> None:
    value = content_disposition(name)
    value.encode("latin-1")  # a header must be Latin-1
    assert value.startswith(f"attachment; filename=\"{fallback}\"; filename*=UTF-8''")
    exact = unquote(value.split("''", 1)[1])
    assert exact == (name.replace("/", "_").replace("\\", "_") or "download")
    assert not any(c in value for c in "\r\n\t\x00")
