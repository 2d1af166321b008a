"""Executing bundles in a real kernel: every catalog kind reads back inside the notebook, file references are
verified against their checksums, and the return bundle carries outputs, values and the executed notebook."""

from __future__ import annotations

import hashlib
import io
import subprocess
import time
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle, check_bundle, open_bundle
from nbpack.bundle.notebook import read_notebook
from nbpack.bundle.returns import check_return, open_return, scraps
from nbpack.cli import main
from tests.helpers import (
    ESAP_EXPECTED,
    ESAP_TYPES,
    REPO,
    UNITS,
    astropy_table,
    file_server,
    reference_table,
    template_notebook,
    write_inputs,
)

READBACK = """\
for name in bundle.catalogs:
    t = bundle.catalog(name)
    nbpack_runtime.save_value(f"cat_{name}", {
        "rows": t.to_pylist(),
        "types": [str(f.type) for f in t.schema],
        "units": {f.name: f.metadata[b"unit"].decode() for f in t.schema if f.metadata and b"unit" in f.metadata},
    })
nbpack_runtime.save_value("astropy_ra_unit", str(bundle.catalog("csv", as_="astropy")["ra"].unit))
nbpack_runtime.save_value("pandas_ra_null", bundle.catalog("csv", as_="pandas")["ra"].isna().tolist())"""

FILES = """\
good = bundle.file("good")
nbpack_runtime.save_value("good_text", good.read_text())
try:
    bundle.file("bad")
    nbpack_runtime.save_value("bad_result", "accepted")
except nbpack_runtime.ChecksumMismatch as exc:
    nbpack_runtime.save_value("bad_result", "refused: " + str(exc))
nbpack_runtime.save_output(good, "copy/good.txt")"""

# Kinds whose read-back equals the reference table exactly; VOTable keeps no null for strings (astropy writes '').
EXACT = ("parquet", "arrow", "csv", "jsonrows", "astropy")
REF_TYPES = ["int64", "double", "bool", "string"]


def _validate_cli(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    main(["validate", str(path)])
    return capsys.readouterr().out


def test_every_input_kind_round_trips_through_a_real_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NBPACK_CACHE", str(tmp_path / "cache"))
    inputs = write_inputs(tmp_path / "in")
    served = tmp_path / "served"
    served.mkdir()
    payload = b"spectrum bytes\n" * 100
    (served / "spec.fits").write_bytes(payload)
    good_sha = hashlib.sha256(payload).hexdigest()
    ref = reference_table()
    cats = [
        CatalogInput(kind, path, columns=UNITS if kind in ("parquet", "arrow", "csv", "jsonrows") else None)
        for kind, path in inputs.items()
    ]
    cats.append(CatalogInput("astropy", astropy_table()))
    with file_server(served) as base:
        spec = BuildSpec(
            title="All kinds",
            catalogs=cats,
            files=[
                {"name": "good", "uri": f"{base}/spec.fits", "size": len(payload), "checksums": {"sha256": good_sha}},
                {"name": "bad", "uri": f"{base}/spec.fits", "checksums": {"sha256": "0" * 64}},
            ],
            notebook=template_notebook(READBACK, FILES, parameters="threshold = 1"),
            notebook_name="kinds.ipynb",
            options={"allow_http": True},
        )
        bundle = tmp_path / "bundle.zip"
        manifest = build_bundle(spec, bundle)
        # Through the command, as a user runs it: `nbpack run BUNDLE -o RETURN.zip`.
        main(["run", str(bundle), "-o", str(tmp_path / "return.zip"), "--timeout", "120"])
    assert "(status completed)" in capsys.readouterr().out

    # The bundle itself: schema-valid, sound, and each catalog in the zip equals its input.
    assert "valid bundle" in _validate_cli(bundle, capsys)
    with open_bundle(bundle) as bf:
        assert check_bundle(bf) == []
        for cat in manifest["catalogs"]:
            table = pq.read_table(io.BytesIO(bf.read(cat["path"])))
            if cat["name"] == "esap":
                assert table.to_pylist() == ESAP_EXPECTED
                assert table.schema.field("dist").metadata[b"unit"] == b"pc"
            elif cat["name"] in EXACT:
                assert table.to_pylist() == ref.to_pylist(), cat["name"]
                assert table.schema.field("ra").metadata[b"unit"] == b"deg"
                assert {c["name"]: c for c in cat["columns"]}["ra"]["unit"] == "deg"

    # The return bundle: valid, and the values computed inside the kernel equal the inputs.
    ret = tmp_path / "return.zip"
    assert "valid return" in _validate_cli(ret, capsys)
    main(["inspect", str(ret)])
    text = capsys.readouterr().out
    assert f"of bundle {manifest['id']}: completed" in text and "outputs/copy/good.txt (1.5 KiB)" in text
    assert "astropy_ra_unit = 'deg'" in text
    with open_return(ret) as rf:
        assert check_return(rf) == []
        m = rf.manifest
        assert m["status"] == "completed" and m["error"] is None and m["bundle_id"] == manifest["id"]
        values = {v["name"]: v["data"] for v in m["values"]}
        for kind in EXACT:
            assert values[f"cat_{kind}"] == {"rows": ref.to_pylist(), "types": REF_TYPES, "units": {"ra": "deg"}}
        assert values["cat_esap"] == {"rows": ESAP_EXPECTED, "types": ESAP_TYPES, "units": {"dist": "pc"}}
        vot = values["cat_votable"]
        assert vot["types"] == REF_TYPES and vot["units"] == {"ra": "deg"}
        assert [r["ra"] for r in vot["rows"]] == ref.column("ra").to_pylist()
        assert [r["flag"] for r in vot["rows"]] == ref.column("flag").to_pylist()
        assert values["astropy_ra_unit"] == "deg"
        assert values["pandas_ra_null"] == [False, False, True, False]
        # Right checksum accepted, wrong one refused with a message naming the file and the algorithm.
        assert values["good_text"] == payload.decode()
        assert values["bad_result"].startswith("refused: bad: sha256 expected 000")
        assert not list((tmp_path / "cache" / "sha256").glob(f"{'0' * 64}/*"))
        assert [o["path"] for o in m["outputs"]] == ["outputs/copy/good.txt"]
        assert rf.read("outputs/copy/good.txt") == payload
        # The executed notebook travels back, with its outputs and scrapbook-style glued values.
        nb = read_notebook(rf.read("kinds.ipynb"))
        assert scraps(nb) == values
        assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
        crate = rf.read("ro-crate-metadata.json").decode()
        assert "CreateAction" in crate and "outputs/copy/good.txt" in crate


def test_failing_notebook_writes_failed_return_and_exits_non_zero(tmp_path: Path) -> None:
    bundle = tmp_path / "fails.zip"
    nb = template_notebook(
        'nbpack_runtime.save_value("before", 1)',
        'raise ValueError("no sources in the cone")',
        'nbpack_runtime.save_value("after", 2)',
    )
    build_bundle(BuildSpec(title="Fails", catalogs=[CatalogInput("t", reference_table())], notebook=nb), bundle)
    out = tmp_path / "not-yet" / "ret.zip"  # the run creates the folder
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "nbpack"), "run", str(bundle), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("nbpack:")]
    assert len(lines) == 1 and "ValueError: no sources in the cone" in lines[0], proc.stderr
    main(["validate", str(out)])  # a failed run is still a valid return bundle
    with open_return(out) as rf:
        assert check_return(rf) == []
        m = rf.manifest
        assert m["status"] == "failed"
        assert "ValueError: no sources in the cone" in m["error"]
        assert [v["name"] for v in m["values"]] == ["before"]
        with zipfile.ZipFile(out) as zf:
            executed = read_notebook(zf.read(m["notebook"]))
        errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert errors and errors[0]["ename"] == "ValueError"


def test_a_cell_over_the_timeout_is_interrupted_and_the_return_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "slow.zip"
    nb = template_notebook('nbpack_runtime.save_value("before", 1)', "import time\ntime.sleep(60)")
    build_bundle(BuildSpec(title="Slow", notebook=nb), bundle)
    out = tmp_path / "ret.zip"
    started = time.monotonic()
    with pytest.raises(SystemExit) as info:
        main(["run", str(bundle), "-o", str(out), "--timeout", "3"])
    assert info.value.code == 1
    assert time.monotonic() - started < 45  # interrupted, not waited out
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"nbpack: error: notebook failed (CellTimeoutError: a cell ran longer than 3 s and was "
        f"interrupted); return bundle with status failed written to {out}"
    ]
    with open_return(out) as rf:
        assert check_return(rf) == []
        assert rf.manifest["status"] == "failed" and rf.manifest["error"].startswith("CellTimeoutError")
        assert [v["name"] for v in rf.manifest["values"]] == ["before"]
