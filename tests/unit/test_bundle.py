"""Building and reading bundles without a kernel: reproducibility, cell placement, schema, tampering, refusals."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest

from nbpack.bundle import schema
from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle, check_bundle, open_bundle, with_returns
from nbpack.bundle.notebook import BOOTSTRAP_TAG, RESULTS_TAG, read_notebook, tagged_cells
from nbpack.errors import InvalidInput, InvalidNotebook, InvalidTable, UnsafeArchive
from tests.helpers import RUNTIME_DIR, UNITS, reference_table, rewrite_zip, template_notebook, write_inputs

EPOCH = "1700000000"


def _spec(tmp_path: Path, notebook: bytes | Path | None = None) -> BuildSpec:
    inputs = write_inputs(tmp_path / "in")
    if notebook is None:
        notebook = template_notebook("x = threshold * 2", parameters="threshold = 1")
    return BuildSpec(
        title="Reproducible",
        catalogs=[CatalogInput("csv", inputs["csv"], columns=UNITS), CatalogInput("esap", inputs["esap"])],
        files=[
            {"name": "spec", "uri": "https://example.org/a.fits", "size": 10, "checksums": {"adler32": "0A1B2C3D"}},
            {"name": "did", "uri": "rucio:lofar:L123_SB001.MS.tar"},
        ],
        notebook=notebook,
        notebook_name="analysis.ipynb",
        requirements=["astropy>=6"],
    )


def _built_notebook(bundle: Path) -> tuple[dict, bytes]:
    with open_bundle(bundle) as bf:
        data = bf.read(bf.manifest["payload"]["notebook"])
        return bf.manifest, data


def test_same_inputs_give_same_bytes_and_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    m1 = build_bundle(_spec(tmp_path), first)
    m2 = build_bundle(_spec(tmp_path), second)
    assert first.read_bytes() == second.read_bytes()
    assert m1["id"] == m2["id"] and m1["id"].startswith("b-") and len(m1["id"]) == 26
    assert m1["created"] == "2023-11-14T22:13:20Z"
    with zipfile.ZipFile(first) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names[0] == "nbpack.json" and names[1:] == sorted(names[1:])
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {(i.external_attr >> 16) & 0o777 for i in infos} == {0o644}
    # Without SOURCE_DATE_EPOCH the build time differs, the id does not.
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert build_bundle(_spec(tmp_path), tmp_path / "now.zip")["id"] == m1["id"]
    # A different input changes the id.
    other = _spec(tmp_path)
    other.files[0]["size"] = 11
    assert build_bundle(other, tmp_path / "c.zip")["id"] != m1["id"]


def test_rebuilding_from_a_built_notebook_never_duplicates_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    m1 = build_bundle(_spec(tmp_path), tmp_path / "a.zip")
    _, nb_bytes = _built_notebook(tmp_path / "a.zip")
    nb = read_notebook(nb_bytes)
    # Bootstrap right after the papermill parameters cell, results last, kernelspec set.
    assert tagged_cells(nb, "parameters") == [0]
    assert tagged_cells(nb, BOOTSTRAP_TAG) == [1]
    assert tagged_cells(nb, RESULTS_TAG) == [len(nb.cells) - 1]
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[2].source == "x = threshold * 2"

    template = tmp_path / "again.ipynb"
    template.write_bytes(nb_bytes)
    m2 = build_bundle(_spec(tmp_path, template), tmp_path / "b.zip")
    _, again = _built_notebook(tmp_path / "b.zip")
    nb2 = read_notebook(again)
    assert len(tagged_cells(nb2, BOOTSTRAP_TAG)) == 1 and len(tagged_cells(nb2, RESULTS_TAG)) == 1
    assert len(nb2.cells) == len(nb.cells)
    assert again == nb_bytes and m2["id"] == m1["id"]


def test_bootstrap_goes_first_without_parameters_and_kernelspec_is_kept(tmp_path: Path) -> None:
    doc = json.loads(template_notebook("print(1)"))
    doc["metadata"]["kernelspec"] = {"name": "astro", "display_name": "Astro", "language": "python"}
    path = tmp_path / "t.ipynb"
    path.write_text(json.dumps(doc))
    build_bundle(_spec(tmp_path, path), tmp_path / "a.zip")
    _, data = _built_notebook(tmp_path / "a.zip")
    nb = read_notebook(data)
    assert tagged_cells(nb, BOOTSTRAP_TAG) == [0]
    assert nb.metadata["kernelspec"]["name"] == "astro"


def test_manifest_is_schema_valid_and_returns_keep_the_id(tmp_path: Path) -> None:
    bundle = tmp_path / "a.zip"
    manifest = build_bundle(_spec(tmp_path), bundle)
    schema.validate(manifest, "bundle")
    assert [f["uri"] for f in manifest["files"]] == ["https://example.org/a.fits", "lofar:L123_SB001.MS.tar"]
    assert manifest["files"][0]["checksums"] == {"adler32": "0a1b2c3d"}
    assert manifest["payload"]["requirements"] == ["astropy>=6"]
    with open_bundle(bundle) as bf:
        assert check_bundle(bf) == []
        assert b"pyarrow" in bf.read("requirements.txt") and b"astropy>=6" in bf.read("requirements.txt")
        assert bf.read("nbpack_runtime/__init__.py").startswith(b'"""nbpack runtime')
        # Whatever quotes the bundle id quotes the final one (the README is hashed into it).
        for member in ("README.md", "ro-crate-metadata.json"):
            assert set(re.findall(r"b-[0-9a-f]{24}", bf.read(member).decode())) <= {manifest["id"]}, member
        runtime = sorted(n for n in bf.zf.namelist() if n.startswith("nbpack_runtime/"))
        assert runtime == [f"nbpack_runtime/{p.name}" for p in sorted(RUNTIME_DIR.glob("*.py"))]
        for member in runtime:
            assert "nbpack" not in [
                line.split()[1] for line in bf.read(member).decode().splitlines() if line.startswith("import ")
            ], member
    stored = tmp_path / "stored.zip"
    returns = {
        "endpoint": "https://nbpack.example.org/api/v1/returns/x",
        "token": "t" * 20,
        "expires": "2030-01-01T00:00:00Z",
    }
    m2 = with_returns(bundle, stored, returns)
    with open_bundle(stored) as bf:
        assert bf.id == manifest["id"] == m2["id"]
        assert bf.manifest["returns"] == returns
        assert check_bundle(bf) == []


def test_a_changed_byte_in_a_catalog_is_named(tmp_path: Path) -> None:
    bundle = tmp_path / "a.zip"
    build_bundle(_spec(tmp_path), bundle)
    with zipfile.ZipFile(bundle) as zf:
        data = bytearray(zf.read("catalogs/csv.parquet"))
    data[len(data) // 2] ^= 0xFF
    tampered = tmp_path / "tampered.zip"
    rewrite_zip(bundle, tampered, change={"catalogs/csv.parquet": bytes(data)})
    with open_bundle(tampered) as bf:
        problems = check_bundle(bf)
    assert problems and problems[0] == "catalogs/csv.parquet: sha256 does not match the manifest"


def test_an_edited_manifest_or_extra_entry_is_caught(tmp_path: Path) -> None:
    bundle = tmp_path / "a.zip"
    manifest = build_bundle(_spec(tmp_path), bundle)
    edited = dict(manifest, title="Someone else's analysis")
    body = (json.dumps(edited, indent=1, sort_keys=True) + "\n").encode()
    rewrite_zip(bundle, tmp_path / "m.zip", change={"nbpack.json": body}, extra={"smuggled.py": b"print(1)"})
    with open_bundle(tmp_path / "m.zip") as bf:
        problems = check_bundle(bf)
    assert "smuggled.py: in the archive but not in the manifest contents" in problems
    assert any(p.startswith(f"id {manifest['id']} does not match the content") for p in problems)


def test_an_entry_leaving_the_folder_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "a.zip"
    build_bundle(_spec(tmp_path), bundle)
    evil = tmp_path / "evil.zip"
    rewrite_zip(bundle, evil, extra={"../outside.txt": b"x"})
    with pytest.raises(UnsafeArchive, match=r"\.\./outside\.txt"):
        open_bundle(evil)


def _no_output(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == [], "a failed build left files behind"


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"catalogs": "garbage"}, InvalidTable, "bad.parquet"),
        (
            {"files": [{"name": "f", "uri": "https://x.org/f", "checksums": {"md5": "xyz"}}]},
            InvalidInput,
            "md5 checksum must be 32 hex digits",
        ),
        ({"files": [{"name": "f", "uri": "ftp://x.org/f"}]}, InvalidInput, "unsupported file URI"),
        ({"notebook": b'{"cells": 3}'}, InvalidNotebook, "not a"),
        ({"notebook": b"not json at all"}, InvalidNotebook, "is not a notebook"),
        ({"origin": {"api_key": "s3cret"}}, InvalidInput, "credential"),
    ],
    ids=["unreadable-table", "checksum-syntax", "uri-scheme", "notebook-shape", "notebook-json", "secret-origin"],
)
def test_bad_inputs_raise_one_line_and_leave_no_output(tmp_path: Path, change: dict, error: type, message: str) -> None:
    spec = BuildSpec(title="Bad", catalogs=[CatalogInput("t", reference_table())])
    if change.get("catalogs"):
        bad = tmp_path / "bad.parquet"
        bad.write_bytes(b"PAR1 not really parquet PAR1")
        spec.catalogs.append(CatalogInput("bad", bad))
    for key in ("files", "notebook", "origin"):
        if key in change:
            setattr(spec, key, change[key])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(error, match=message) as info:
        build_bundle(spec, out / "b.zip")
    assert "\n" not in str(info.value)
    _no_output(out)


def test_build_into_a_stream(tmp_path: Path) -> None:
    buf = io.BytesIO()
    manifest = build_bundle(BuildSpec(title="Stream", catalogs=[CatalogInput("t", reference_table())]), buf)
    buf.seek(0)
    with open_bundle(buf) as bf:
        assert bf.id == manifest["id"] and check_bundle(bf) == []
        assert bf.manifest["payload"]["generated"] is True


def test_crate_describes_every_part_and_reference(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    spec.origin = {"service": "gaia-dr3-tap", "query": "SELECT * FROM gaia"}
    bundle = tmp_path / "a.zip"
    manifest = build_bundle(spec, bundle)
    with open_bundle(bundle) as bf:
        crate = json.loads(bf.read("ro-crate-metadata.json"))
    graph = {e["@id"]: e for e in crate["@graph"]}
    assert crate["@context"] == "https://w3id.org/ro/crate/1.2/context"
    root = graph["./"]
    assert root["identifier"] == manifest["id"] and root["name"] == "Reproducible"
    # Every referenced id is described in the graph (no dangling local references).
    refs = [p["@id"] for p in root["hasPart"]] + [root["isBasedOn"]["@id"]]
    assert [r for r in refs if r not in graph] == []
    assert graph["#origin-gaia-dr3-tap"]["text"] == "SELECT * FROM gaia"
    assert graph["catalogs/csv.parquet"]["encodingFormat"] == "application/vnd.apache.parquet"
    assert graph["catalogs/csv.parquet"]["sha256"] == manifest["catalogs"][0]["sha256"]
    # Remote files are web entities with absolute ids; a Rucio DID keeps its identifier.
    assert graph["https://example.org/a.fits"]["contentSize"] == "10"
    assert graph["rucio:lofar:L123_SB001.MS.tar"]["identifier"] == "lofar:L123_SB001.MS.tar"
    assert "SoftwareSourceCode" in graph["analysis.ipynb"]["@type"]


def test_a_notebook_error_from_nbformat_is_one_line() -> None:
    # nbformat's own message keeps a newline the document put in its version ("Unsupported nbformat version x\n"):
    # the property test found it; every error nbpack shows is one line.
    with pytest.raises(InvalidNotebook) as caught:
        read_notebook(json.dumps({"nbformat": "x\n", "nbformat_minor": 0, "cells": [], "metadata": {}}))
    assert "\n" not in str(caught.value) and "Unsupported nbformat version x" in str(caught.value)
