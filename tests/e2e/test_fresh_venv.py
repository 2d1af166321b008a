"""A bundle runs where nbpack is not installed: a fresh venv with only pyarrow, ipykernel and nbclient."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

from nbpack.bundle import archive
from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle, open_bundle
from nbpack.bundle.returns import check_return, open_return
from tests.helpers import UNITS, clean_env, fresh_venv, reference_table, run_notebook_in, template_notebook

CHECK = """\
import importlib.util, sys
t = bundle.catalog("sources")
nbpack_runtime.save_value("rows", t.to_pylist())
nbpack_runtime.save_value("types", [str(f.type) for f in t.schema])
nbpack_runtime.save_value("ra_unit", t.schema.field("ra").metadata[b"unit"].decode())
nbpack_runtime.save_value("prefix", sys.prefix)
nbpack_runtime.save_value("has_nbpack", importlib.util.find_spec("nbpack") is not None)
nbpack_runtime.save_output(b"done\\n", "done.txt")"""


def test_bundle_executes_in_fresh_venv_without_nbpack(tmp_path: Path) -> None:
    venv = fresh_venv()
    py = venv / "bin" / "python"
    ref = reference_table()
    bundle = tmp_path / "b.zip"
    build_bundle(
        BuildSpec(
            title="Fresh venv",
            catalogs=[CatalogInput("sources", ref, columns=UNITS)],
            notebook=template_notebook(CHECK),
            notebook_name="fresh.ipynb",
        ),
        bundle,
    )
    folder = tmp_path / "unpacked"
    with open_bundle(bundle) as bf:
        archive.extract(bf.zf, folder)

    env = clean_env(tmp_path, [venv / "bin"])
    probe = subprocess.run([str(py), "-c", "import nbpack"], cwd=tmp_path, env=env, capture_output=True, timeout=60)
    assert probe.returncode != 0, "the fresh venv must not see nbpack"
    run_notebook_in(py, folder / "fresh.ipynb", env, cell_timeout=120)

    returns = sorted(folder.glob("nbpack-return-*.zip"))
    assert len(returns) == 1, sorted(p.name for p in folder.iterdir())
    with open_return(returns[0]) as rf:
        assert check_return(rf) == []
        m = rf.manifest
        values = {v["name"]: v["data"] for v in m["values"]}
        assert m["status"] == "completed"
        assert values["rows"] == ref.to_pylist()
        assert values["types"] == ["int64", "double", "bool", "string"]
        assert values["ra_unit"] == "deg"
        assert Path(values["prefix"]).resolve() == venv.resolve()
        assert values["has_nbpack"] is False
        assert [o["path"] for o in m["outputs"]] == ["outputs/done.txt"]
        assert rf.read("outputs/done.txt") == b"done\n"
        assert m["provenance"]["packages"]["pyarrow"] != "missing"
        with zipfile.ZipFile(returns[0]) as zf:
            assert "fresh.ipynb" in zf.namelist()
            json.loads(zf.read("ro-crate-metadata.json"))
