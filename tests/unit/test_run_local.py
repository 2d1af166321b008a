"""nbpack/cli/run_local.py without a kernel or a Lab: ``open --no-lab`` unpacking (kept across opens, never over
another bundle), the failure line of ``run``/``demo`` and the demo's spec. Running a kernel is tests/integration's."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from nbpack.bundle.build import BuildSpec, build_bundle
from nbpack.cli.run_local import _fail_unless_done, demo_spec, open_
from nbpack.errors import InvalidInput, NbpackError
from tests.helpers import template_notebook


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("run_local")
    one, two = folder / "one.zip", folder / "two.zip"
    build_bundle(BuildSpec(title="One", notebook=template_notebook("x = 1")), one)
    build_bundle(BuildSpec(title="Two", notebook=template_notebook("x = 2")), two)
    return one, two


def _open(bundle: Path, folder: Path) -> tuple[str, BaseException | None]:
    result = CliRunner().invoke(open_, [str(bundle), "--dir", str(folder), "--no-lab"])
    return result.output, result.exception


def test_open_unpacks_once_and_keeps_edits(tmp_path: Path, bundles: tuple[Path, Path]) -> None:
    folder = tmp_path / "work, é"
    out, exc = _open(bundles[0], folder)
    assert exc is None and out.startswith(f"{folder}: unpacked bundle b-")
    manifest = json.loads((folder / "nbpack.json").read_text())
    notebook = folder / manifest["payload"]["notebook"]
    notebook.write_text("my edits")
    out, exc = _open(bundles[0], folder)
    assert exc is None and out == f"{folder}: already unpacked; your edits there are kept\n"
    assert notebook.read_text() == "my edits"


def test_open_never_unpacks_over_another_bundle_or_a_used_folder(tmp_path: Path, bundles: tuple[Path, Path]) -> None:
    folder = tmp_path / "w"
    _open(bundles[0], folder)
    _, exc = _open(bundles[1], folder)
    assert isinstance(exc, InvalidInput) and "holds another bundle (b-" in str(exc)
    (folder / "nbpack.json").write_text("[not an object]")
    _, exc = _open(bundles[1], folder)
    assert isinstance(exc, InvalidInput) and "unreadable nbpack.json" in str(exc)
    used = tmp_path / "used"
    used.mkdir()
    (used / "thesis.tex").write_text("precious")
    _, exc = _open(bundles[0], used)
    assert isinstance(exc, InvalidInput) and "is not this bundle's folder" in str(exc)
    assert sorted(p.name for p in used.iterdir()) == ["thesis.tex"]


def _result(status: str, error: str | None = None, upload_error: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(status=status, error=error, upload_error=upload_error)


def test_a_completed_run_passes_and_failures_name_the_return_bundle() -> None:
    _fail_unless_done(_result("completed"), "r.zip")
    with pytest.raises(NbpackError, match=r"notebook failed \(ZeroDivisionError\); return bundle .* to r.zip") as e:
        _fail_unless_done(_result("failed", "ZeroDivisionError"), "r.zip")
    assert e.value.code == "notebook_failed"
    with pytest.raises(NbpackError, match=r"failed \(boom\); upload failed too \(503\)"):
        _fail_unless_done(_result("failed", "boom", "503"), "r.zip")
    with pytest.raises(NbpackError, match="upload failed: 503; the return bundle is kept at r.zip") as e:
        _fail_unless_done(_result("completed", upload_error="503"), "r.zip")
    assert e.value.code == "upload_failed"


def test_the_demo_spec_stages_the_shipped_sample_and_builds(tmp_path: Path) -> None:
    spec = demo_spec(tmp_path / "demo")
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["gaia-cone.ipynb", "sample_sources.csv"]
    manifest = build_bundle(spec, tmp_path / "demo.zip")
    (catalog,) = manifest["catalogs"]
    assert catalog["name"] == "sources" and catalog["rows"] > 0
    assert any(c.get("unit") for c in catalog["columns"])  # the shipped column metadata was applied
