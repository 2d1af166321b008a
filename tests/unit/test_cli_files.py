"""nbpack/cli/files.py: ``build``, ``validate`` and ``inspect`` on bundle files, invoked as click commands."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from nbpack.cli.files import build, inspect, validate
from nbpack.errors import InvalidInput, NbpackError
from tests.helpers import rewrite_zip, template_notebook

BIG = 2**53 + 1


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "stars.csv"
    path.write_text(f'id,name,flux\n{BIG},"Alpha, Tau",1.5e300\n2,"é\u2028x",\n', "utf-8")
    (tmp_path / "stars.columns.json").write_text(json.dumps({"flux": {"unit": "mJy", "ucd": "phot.flux"}}))
    return path


def _build(tmp_path: Path, *args: str) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(build, ["-o", str(tmp_path / "b.zip"), *args])
    return result.exit_code, result.output, result.exception


def test_build_reads_the_catalog_its_sidecar_and_prints_the_manifest(tmp_path: Path, csv: Path) -> None:
    nb = tmp_path / "my_cone-search.ipynb"
    nb.write_bytes(template_notebook("x = 1"))
    code, out, exc = _build(
        tmp_path, "--catalog", f"stars={csv}", "--notebook", str(nb), "--require", "astropy>=6", "--json"
    )
    assert code == 0, exc
    manifest = json.loads(out)
    assert manifest["title"] == "my cone search"  # from the notebook's name
    (catalog,) = manifest["catalogs"]
    assert catalog["rows"] == 2
    flux = {c["name"]: c for c in catalog["columns"]}["flux"]
    assert flux.get("unit") == "mJy" and flux.get("ucd") == "phot.flux"
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        table = pq.read_table(io.BytesIO(zf.read(catalog["path"])))
    assert table.column("id").to_pylist() == [BIG, 2]
    assert table.column("name").to_pylist() == ["Alpha, Tau", "é\u2028x"]
    values = table.column("flux").to_pylist()
    assert values == [1.5e300, None]
    result = CliRunner().invoke(validate, [str(tmp_path / "b.zip")])
    assert result.exit_code == 0 and result.output == f"{tmp_path / 'b.zip'}: valid bundle {manifest['id']}\n"
    shown = CliRunner().invoke(inspect, [str(tmp_path / "b.zip"), "--json"])
    assert json.loads(shown.output) == manifest


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--catalog", "stars"], "expected NAME=PATH"),
        (["--catalog", "=x.csv"], "expected NAME=PATH"),
        (["--catalog", "stars=/nonexistent/x.csv"], "no such file"),
    ],
)
def test_bad_catalog_options_are_input_errors(tmp_path: Path, args: list[str], message: str) -> None:
    code, _, exc = _build(tmp_path, *args)
    assert code == 1 and isinstance(exc, InvalidInput) and message in str(exc)
    assert not (tmp_path / "b.zip").exists()


@pytest.mark.parametrize("sidecar", ["[1, 2]", "{not json"])
def test_a_sidecar_that_is_not_an_object_is_refused(tmp_path: Path, csv: Path, sidecar: str) -> None:
    (tmp_path / "stars.columns.json").write_text(sidecar)
    code, _, exc = _build(tmp_path, "--catalog", f"stars={csv}")
    assert isinstance(exc, InvalidInput) and "stars.columns.json" in str(exc)


def test_notebook_and_payload_together_are_refused(tmp_path: Path) -> None:
    nb = tmp_path / "n.ipynb"
    nb.write_bytes(template_notebook("x = 1"))
    _, _, exc = _build(tmp_path, "--notebook", str(nb), "--payload", "p")
    assert isinstance(exc, InvalidInput) and "either --notebook or --payload" in str(exc)


def test_validate_names_the_first_problem_and_counts_the_rest(tmp_path: Path, csv: Path) -> None:
    assert _build(tmp_path, "--catalog", f"stars={csv}")[0] == 0
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        readme, reqs = zf.read("README.md"), zf.read("requirements.txt")
    rewrite_zip(tmp_path / "b.zip", bad, change={"README.md": readme.upper(), "requirements.txt": reqs + b"x\n"})
    result = CliRunner().invoke(validate, [str(bad)])
    assert isinstance(result.exception, NbpackError) and result.exception.code == "invalid_bundle"
    assert "invalid bundle: README.md: sha256 does not match the manifest (and 1 more)" in str(result.exception)


def test_a_zip_that_is_neither_kind_is_an_input_error(tmp_path: Path) -> None:
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("x.txt", "x")
    for command in (validate, inspect):
        result = CliRunner().invoke(command, [str(other)])
        assert isinstance(result.exception, InvalidInput) and "neither a bundle" in str(result.exception)
    result = CliRunner().invoke(inspect, [str(tmp_path / "missing.zip")])
    assert isinstance(result.exception, InvalidInput) and "no such file" in str(result.exception)
