"""The bundle format's words, defined once in the runtime (``nbpack_runtime/vocab.py``) and used by nbpack.

One test per rule: the return id, the safe member path (and each place nbpack applies it), media types, the
remote document nbpack writes and the runtime reads.
"""

from __future__ import annotations

import json

import pytest

from nbpack.bundle import archive
from nbpack.bundle.payloads import check_filepath
from nbpack.bundle.remote import Remote
from nbpack.bundle.returns import return_id_for
from nbpack.errors import InvalidInput
from nbpack.runtime.nbpack_runtime import remote as rt_remote
from nbpack.runtime.nbpack_runtime.errors import RuntimeProblem
from nbpack.runtime.nbpack_runtime.vocab import (
    CRATE,
    RETURN_MANIFEST,
    RUN_FIELDS,
    media_type,
    path_problem,
    return_id,
)
from nbpack.store.api import check_key

RUN = {
    "status": "completed",
    "error": None,
    "started": "2026-01-01T00:00:00Z",
    "ended": "2026-01-01T00:00:01Z",
    "notebook": "a.ipynb",
    "values": [{"name": "n", "encoder": "json", "data": 2**63 + 1}],
    "provenance": {"python": "3", "host": "é, ü"},
}
BID = "b-" + "1" * 24
ENTRIES = [("a.ipynb", "0" * 64), ("outputs/x,y.csv", "1" * 64)]


def test_return_id_covers_files_and_every_run_field() -> None:
    rid = return_id(BID, ENTRIES, RUN)
    assert rid.startswith("r-") and len(rid) == 26 and int(rid[2:], 16) >= 0
    assert return_id(BID, list(reversed(ENTRIES)), RUN) == rid  # the order files are listed in does not count
    assert return_id(BID, ENTRIES, {**RUN, "extra": 1}) == rid  # only RUN_FIELDS count
    assert return_id("b-" + "2" * 24, ENTRIES, RUN) != rid
    assert return_id(BID, ENTRIES[:1], RUN) != rid
    assert return_id(BID, [(ENTRIES[0][0], "f" * 64), ENTRIES[1]], RUN) != rid
    for field in RUN_FIELDS:
        assert return_id(BID, ENTRIES, {**RUN, field: "other"}) != rid, field


def test_the_service_checks_a_return_with_the_runtime_s_rule() -> None:
    # The return's own manifest and crate hold the id, so they are not in what it covers.
    contents = [{"path": p, "sha256": d} for p, d in ENTRIES]
    contents += [{"path": RETURN_MANIFEST, "sha256": "2" * 64}, {"path": CRATE, "sha256": "3" * 64}]
    manifest = {"bundle_id": BID, "contents": contents, **RUN}
    assert return_id_for(manifest) == return_id(BID, ENTRIES, RUN)


SAFE = ["a", "a/b.parquet", "outputs/x, y é.csv", "a..b/c", ".hidden/x", "a b/..c"]
UNSAFE = ["", "/a", "a/../b", "..", "../a", "a/..", "a//b", "a/./b", ".", "a/", "a\\b", "C:a", "c:/x", "a\x00b"]


@pytest.mark.parametrize("path", SAFE)
def test_safe_member_paths(path: str) -> None:
    assert path_problem(path) is None
    assert check_key(path) == path
    assert archive.check_name(path) == path
    check_filepath("p", path)
    assert rt_remote.member_url({rt_remote.FILES: "https://s.example/files/t/h/"}, path).startswith("https://")


@pytest.mark.parametrize("path", UNSAFE)
def test_unsafe_member_paths_are_refused_everywhere(path: str) -> None:
    assert path_problem(path)
    with pytest.raises(InvalidInput):
        check_key(path)
    with pytest.raises(InvalidInput):
        check_filepath("p", path)  # a/../b was accepted (normalised) before the rule was shared
    with pytest.raises(RuntimeProblem):
        rt_remote.member_url({rt_remote.FILES: "https://s.example/files/t/h/"}, path)
    if path != "a/":  # a zip's folder entry ends in '/'
        with pytest.raises(archive.UnsafeArchive):
            archive.check_name(path)


def test_a_zip_entry_with_dotdot_says_it_leaves_its_folder() -> None:
    with pytest.raises(archive.UnsafeArchive, match="leaves its folder"):
        archive.check_name("../../etc/passwd")
    assert archive.check_name("catalogs/") == "catalogs/"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("catalogs/stars.parquet", "application/vnd.apache.parquet"),
        ("IMAGE.FITS", "application/fits"),
        ("a.fz", "application/fits"),
        ("x,y.csv", "text/csv"),
        ("nb.ipynb", "application/x-ipynb+json"),
        ("data.h5", "application/x-hdf5"),
        ("page.html", "text/html"),  # from the standard library's table
        ("no-suffix", None),
        ("dir.parquet/file", None),
    ],
)
def test_media_types(name: str, expected: str | None) -> None:
    assert media_type(name) == expected


def test_the_runtime_reads_the_remote_document_nbpack_writes() -> None:
    doc = json.loads(Remote("https://s.example/files/t/h-1/", 1).document(["catalogs/b.parquet", "catalogs/a.parquet"]))
    assert rt_remote.check_remote(doc, "test") == {
        rt_remote.FILES: "https://s.example/files/t/h-1/",
        rt_remote.LAZY: ["catalogs/a.parquet", "catalogs/b.parquet"],
    }
