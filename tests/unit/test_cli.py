"""`nbpack build` through click's runner in process: the title from the notebook, an old template without cell ids.
Commands that run kernels or a service are in tests/integration/test_cli.py."""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from nbpack.cli import main
from nbpack.cli.commands import cli
from tests.helpers import template_notebook, write_inputs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Input files shared by the tests of this module (read-only)."""
    folder = tmp_path_factory.mktemp("cli-inputs")
    paths = write_inputs(folder)
    paths["columns"] = folder / "t.columns.json"  # the sidecar read for t.csv
    paths["columns"].write_text(json.dumps({"ra": {"unit": "deg", "ucd": "pos.eq.ra"}}))
    paths["notebook"] = folder / "my_analysis.ipynb"
    paths["notebook"].write_bytes(template_notebook("print(len(catalogs))", parameters="radius = 1.0"))
    paths["refs"] = folder / "refs.json"
    paths["refs"].write_text(
        json.dumps(
            [
                {
                    "name": "img",
                    "uri": "https://example.org/img.fits",
                    "size": 2880,
                    "checksums": {"md5": "0" * 32},
                    "site": "SURF",
                }
            ]
        )
    )
    return paths


def test_title_defaults_from_the_notebook(inputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "b.zip"
    result = CliRunner().invoke(
        cli,
        [
            "build",
            "-o",
            str(out),
            "--catalog",
            f"t={inputs['parquet']}",
            "--notebook",
            str(inputs["notebook"]),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["title"] == "my analysis"


def test_template_without_cell_ids_builds_quietly(tmp_path: Path) -> None:
    doc = json.loads(template_notebook("x = 1"))
    for cell in doc["cells"]:
        del cell["id"]
    template = tmp_path / "old.ipynb"
    template.write_text(json.dumps(doc))
    out = tmp_path / "b.zip"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main(["build", "-o", str(out), "--notebook", str(template)])
    assert [str(w.message) for w in caught if "nbformat" in w.filename] == []
    with zipfile.ZipFile(out) as zf:
        cells = json.loads(zf.read("old.ipynb"))["cells"]
    assert all(c.get("id") for c in cells) and len({c["id"] for c in cells}) == len(cells)
