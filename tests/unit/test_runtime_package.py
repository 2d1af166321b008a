"""The runtime as a package in the bundle: copied whole, and a payload file cannot replace or add a module of it."""

from __future__ import annotations

import io
import zipfile

import pyarrow as pa
import pytest

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from nbpack.errors import InvalidInput
from tests.helpers import RUNTIME_DIR


def _spec(extra_files: dict[str, bytes] | None = None) -> BuildSpec:
    return BuildSpec("t", catalogs=[CatalogInput("c", pa.table({"a": [1]}))], extra_files=extra_files or {})


def test_the_bundle_holds_every_runtime_module_and_lists_it_in_contents() -> None:
    out = io.BytesIO()
    manifest = build_bundle(_spec(), out)
    names = zipfile.ZipFile(out).namelist()
    shipped = sorted(n for n in names if n.startswith("nbpack_runtime"))
    assert shipped == [f"nbpack_runtime/{p.name}" for p in sorted(RUNTIME_DIR.glob("*.py"))]
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    listed = {c["path"] for c in manifest["contents"]}
    assert set(shipped) <= listed and manifest["runtime"]["module"] == "nbpack_runtime"


@pytest.mark.parametrize("rel", ["nbpack_runtime/__init__.py", "nbpack_runtime/extra.py", "nbpack_runtime.py"])
def test_a_payload_file_cannot_replace_or_shadow_the_runtime(rel: str) -> None:
    with pytest.raises(InvalidInput, match="would replace a file nbpack writes"):
        build_bundle(_spec(extra_files={rel: b"print('x')\n"}), io.BytesIO())


def test_runtime_modules_import_each_other_s_public_names_only() -> None:
    import ast

    private = []
    for path in sorted(RUNTIME_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                private += [f"{path.name}: .{node.module}.{name}" for name in names]
    assert private == [], "\n".join(private)
