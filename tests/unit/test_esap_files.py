"""nbpack/esap/files.py: file references from ESAP basket records — which values are data URLs, what each file is
named (its own name, safe characters, extension kept), and Rucio records with sizes and checksums."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbpack.esap.files import Skip, is_data_url, row_refs, rucio_ref, safe_file_name, url_refs
from tests.unit.test_esap_service import HEADERS, esap_app

BIG = 2**53 + 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://h.example/a.fits", True),
        ("  davs://dcache.example:2880/pnfs/x.MS  ", True),
        ("root://eos.example//eos/x.root", True),
        ("s3://bucket/key", True),
        ("ftp://h.example/a", False),
        ("javascript:alert(1)", False),
        ("https://", False),
        ("https://h.example/a b.fits", False),
        ("https://[::1", False),  # urlsplit refuses it: not a URL, not a crash
        ("https://h.example/" + "a" * 5000, False),
        (42, False),
    ],
)
def test_is_data_url(value: object, expected: bool) -> None:
    assert is_data_url(value) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https%3A//x/dir/My%20File%2C%C3%A9.fits", "My_File_.fits"),
        ("lofar:L123_SB001.MS.tar", "L123_SB001.MS.tar"),
        ("../../etc/passwd", "passwd"),
        ("..", "file"),
        ("/", "file"),
        ("a\x00b\nc.txt", "a_b_c.txt"),
        ("x" * 300 + ".fits", "x" * 123 + ".fits"),
    ],
)
def test_safe_file_names_keep_the_extension_and_nothing_dangerous(raw: str, expected: str) -> None:
    name = safe_file_name(raw)
    assert name == expected and len(name) <= 128 and "/" not in name and not name.startswith(".")


def test_a_record_gives_its_data_urls_first_and_skips_pictures_and_pages() -> None:
    record = {
        "name": "P003+41",
        "thumbnail": "https://h.example/t.png",
        "info": "https://h.example/about.html",
        "extra": "https://h.example/cube",
        "access_url": "https://h.example/get?file=obs%2Fcube.fits&x=1",
        "url": "https://h.example/get?file=obs%2Fcube.fits&x=1",  # the same URL once
        "access_format": "application/fits",
        "title": "A cube, é",
    }
    refs = url_refs(record)
    assert [r["uri"] for r in refs] == [record["access_url"], record["extra"]]
    assert refs[0] == {
        "name": "cube.fits",  # from the query: the path's segment "get" has no extension
        "uri": record["access_url"],
        "media_type": "application/fits",
        "description": "A cube, é",
    }
    assert refs[1]["name"] == "P003_41"  # no name of its own: the record's


def test_a_measurement_set_is_a_directory_not_troff() -> None:
    (ref,) = row_refs(["P1", "https://h.example/data/L1_SB000.MS/", 7, "https://h.example/data/L1_SB000.MS/"])
    assert ref["name"] == "L1_SB000.MS" and ref["media_type"] == "inode/directory"
    assert ref["description"] == "CASA measurement set (a directory)"


def test_rucio_records_keep_big_sizes_and_pad_checksums() -> None:
    ref = rucio_ref(
        {"scope": "lofar", "name": "L1.MS", "bytes": BIG, "adler32": 0x0A1B2C, "md5": "0xABCDEF", "rse": "SURF"}
    )
    assert ref == {
        "name": "L1.MS",
        "uri": "lofar:L1.MS",
        "size": BIG,
        "checksums": {"adler32": "000a1b2c", "md5": "abcdef"},
        "site": "SURF",
    }
    dataset = rucio_ref({"did": "s:set", "size": "12", "type": "dataset"})
    assert dataset["size"] == 12 and dataset["description"] == "Rucio dataset (all its files)"


@pytest.mark.parametrize("size", [float("inf"), float("nan"), 1.5, True, -3, "1e3", "12 bytes", [1]])
def test_a_rucio_size_that_is_not_a_whole_byte_count_is_skipped(size: object) -> None:
    # Infinity once raised OverflowError (a 500), 1.5 became 1 and True became 1.
    with pytest.raises(Skip, match="is not a whole number of bytes"):
        rucio_ref({"did": "s:n", "bytes": size})


def test_a_rucio_record_without_a_did_is_skipped() -> None:
    with pytest.raises(Skip, match="neither 'did' nor 'scope' and 'name'"):
        rucio_ref({"scope": "s", "name": ""})


def test_an_infinite_size_in_a_basket_is_a_skipped_item_not_a_500(tmp_path: Path) -> None:
    client = esap_app(tmp_path).test_client()
    item = '{"archive": "rucio", "record": {"scope": "S", "name": "x.MS", "bytes": Infinity}}'
    good = json.dumps({"archive": "rucio", "record": {"scope": "S", "name": "y.MS", "bytes": 3}})
    resp = client.post("/api/v1/bundles", json={"basket": [{"item_data": item}, {"item_data": good}]}, headers=HEADERS)
    assert resp.status_code == 201, resp.get_json()
    assert "not a whole number of bytes" in resp.get_json()["basket"][0]["skipped"]
