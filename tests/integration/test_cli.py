"""The ``nbpack`` command: the documented interface, exit codes, one-line errors and no partial output."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from nbpack.cli import main
from nbpack.cli.commands import cli
from nbpack.hub.links import target_dir_for
from tests.helpers import REPO, esap_page, rewrite_zip
from tests.unit.test_cli import inputs

__all__ = ["inputs"]  # fixtures shared with the in-process tests


@pytest.fixture(scope="module")
def bundle(inputs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle built through the CLI with every option of the documented interface."""
    out = tmp_path_factory.mktemp("cli-bundle") / "b.zip"
    result = CliRunner().invoke(
        cli,
        [
            "build",
            "-o",
            str(out),
            "--title",
            "CLI bundle",
            "--catalog",
            f"sources={inputs['csv']}",
            "--catalog",
            f"page={inputs['esap']}",
            "--file",
            "ms=rucio:lofar:L1_SB0.MS.tar",
            "--file",
            "spec=https://example.org/spec.fits",
            "--files",
            str(inputs["refs"]),
            "--notebook",
            str(inputs["notebook"]),
            "--require",
            "astropy>=6",
            "--require",
            "numpy",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{out}: bundle b-") and "2 catalog(s), 3 file reference(s)" in result.output
    return out


def _fail(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``main`` expecting failure; returns its one stderr line."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code != 0
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("nbpack: error: ")
    return lines[0]


def test_build_validate_inspect(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["validate", str(bundle)])
    assert capsys.readouterr().out.strip().startswith(f"{bundle}: valid bundle b-")
    main(["inspect", str(bundle), "--json"])
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["title"] == "CLI bundle"
    assert [c["name"] for c in manifest["catalogs"]] == ["sources", "page"]
    ra = {c["name"]: c for c in manifest["catalogs"][0]["columns"]}["ra"]
    assert ra["unit"] == "deg" and ra["ucd"] == "pos.eq.ra"
    assert {f["name"]: f["uri"] for f in manifest["files"]} == {
        "ms": "lofar:L1_SB0.MS.tar",
        "spec": "https://example.org/spec.fits",
        "img": "https://example.org/img.fits",
    }
    assert manifest["payload"]["notebook"] == "my_analysis.ipynb"
    assert manifest["payload"]["requirements"] == ["astropy>=6", "numpy"]
    main(["inspect", str(bundle)])
    text = capsys.readouterr().out
    assert "bundle b-" in text and "sources: 4 rows" in text and "ra [deg]" in text
    assert "img: https://example.org/img.fits (2.8 KiB; at SURF; checksums md5)" in text
    assert "bootstrap (cell 2 of" in text


def _struct_parquet(folder: Path) -> Path:
    path = folder / "nested.parquet"
    pq.write_table(pa.table({"p": pa.array([{"x": 1}, {"x": 2}])}), path)
    return path


def _esap_unknown_type(folder: Path) -> Path:
    page = esap_page()
    for row in page["results"]:
        row["fields"] = [{**f, "datatype": "quaternion"} if f["name"] == "mag" else f for f in row["fields"]]
    path = folder / "odd.json"
    path.write_text(json.dumps(page))
    return path


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (lambda d: (d / "bad.csv").write_text("a,b\n1,2\n3\n") and d / "bad.csv", [], "bad.csv"),
        (lambda d: (d / "bad.parquet").write_bytes(b"PAR1 junk PAR1") and d / "bad.parquet", [], "bad.parquet"),
        (_struct_parquet, [], "column 'p' holds nested values"),
        (_esap_unknown_type, [], "quaternion"),
        (lambda d: d / "missing.csv", [], "missing.csv: no such file"),
        (None, ["--file", "x=https://example.org/x", "--files", "REFS"], "md5 checksum must be 32 hex digits"),
        (None, ["--notebook", "NB"], "is not a"),
        (None, ["--notebook", "MISSING_NB"], "no such file"),
        (None, ["--file", "nouri"], "expected NAME=URI"),
    ],
    ids=[
        "ragged-csv",
        "bad-parquet",
        "nested-column",
        "unknown-esap-type",
        "missing-table",
        "checksum-syntax",
        "bad-notebook",
        "missing-notebook",
        "file-syntax",
    ],
)
def test_build_failures_are_one_line_and_leave_nothing(
    make,
    extra: list[str],
    message: str,
    tmp_path: Path,  # noqa: ANN001
    inputs: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "refs.json").write_text(json.dumps([{"name": "r", "uri": "https://e.org/r", "checksums": {"md5": "xyz"}}]))
    (src / "nb.ipynb").write_text(json.dumps({"cells": [{"cell_type": "code"}], "nbformat": 4}))
    table = make(src) if make else inputs["csv"]
    extra = [
        {"REFS": str(src / "refs.json"), "NB": str(src / "nb.ipynb"), "MISSING_NB": str(src / "gone.ipynb")}.get(a, a)
        for a in extra
    ]
    out = tmp_path / "out"
    out.mkdir()
    line = _fail(["build", "-o", str(out / "b.zip"), "--catalog", f"t={table}", *extra], capsys)
    assert message in line
    assert list(out.iterdir()) == []


def test_tampered_and_unsafe_zips_fail_validation(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with zipfile.ZipFile(bundle) as zf:
        data = bytearray(zf.read("catalogs/sources.parquet"))
    data[100] ^= 0x01
    tampered = tmp_path / "tampered.zip"
    rewrite_zip(bundle, tampered, change={"catalogs/sources.parquet": bytes(data)})
    line = _fail(["validate", str(tampered)], capsys)
    assert "catalogs/sources.parquet: sha256 does not match the manifest" in line

    evil = tmp_path / "evil.zip"
    rewrite_zip(bundle, evil, extra={"../../etc/cron.d/x": b"boom"})
    assert "leaves its folder" in _fail(["validate", str(evil)], capsys)
    assert "leaves its folder" in _fail(["inspect", str(evil)], capsys)
    assert "no such file" in _fail(["validate", str(tmp_path / "nope.zip")], capsys)
    (tmp_path / "notzip.zip").write_text("hello")
    assert "not a readable zip" in _fail(["validate", str(tmp_path / "notzip.zip")], capsys)

    # The installed script behaves the same: non-zero exit, one line on stderr, no traceback.
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "nbpack"), "validate", str(tampered)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"nbpack: error: {tampered}: invalid bundle: catalogs/sources.parquet: sha256 does not match the manifest"
    ]


def test_open_unpacks_into_a_stable_folder_and_keeps_edits(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    main(["open", str(bundle), "--no-lab"])
    first = capsys.readouterr().out
    main(["inspect", str(bundle), "--json"])
    manifest = json.loads(capsys.readouterr().out)
    folder = tmp_path / target_dir_for(manifest["id"], manifest["title"])
    assert f"{folder.name}: unpacked bundle {manifest['id']}" in first
    assert (folder / "nbpack.json").is_file() and (folder / "catalogs" / "sources.parquet").is_file()
    nb = folder / "my_analysis.ipynb"
    edited = nb.read_text().replace("print(len(catalogs))", "print('my edit')")
    nb.write_text(edited)
    (folder / "notes.txt").write_text("mine")

    main(["open", str(bundle), "--no-lab"])
    assert "already unpacked; your edits there are kept" in capsys.readouterr().out
    assert nb.read_text() == edited and (folder / "notes.txt").read_text() == "mine"

    # A folder holding a different bundle is not mistaken for this one's.
    manifest_there = json.loads((folder / "nbpack.json").read_text())
    (folder / "nbpack.json").write_text(json.dumps({**manifest_there, "id": "b-" + "0" * 24}))
    assert "holds another bundle (b-000000000000000000000000)" in _fail(["open", str(bundle), "--no-lab"], capsys)

    other = tmp_path / "occupied"
    other.mkdir()
    (other / "x").write_text("x")
    assert "choose --dir" in _fail(["open", str(bundle), "--no-lab", "--dir", str(other)], capsys)
