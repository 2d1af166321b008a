"""Released schemas are frozen: each ``schemas/*.schema.json`` is pinned by sha256 in ``schemas/SHA256SUMS``.

A changed frozen schema fails here. A new format version is a new file (``bundle-1.1.schema.json``) with its own pin.
While a version is still open (before release), regenerate every pin with one command from the repository root:

    (cd schemas && sha256sum *.schema.json > SHA256SUMS)

and check with ``(cd schemas && sha256sum -c SHA256SUMS)``, which reads the same file this test does.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from tests.helpers import REPO

SCHEMAS = REPO / "schemas"


def _pins(folder: Path) -> dict[str, str]:
    """The ``sha256sum`` lines of ``SHA256SUMS``: file name → hex digest."""
    pins = {}
    for line in (folder / "SHA256SUMS").read_text("ascii").splitlines():
        digest, _, name = line.partition("  ")
        assert len(digest) == 64 and name, f"not a sha256sum line: {line!r}"
        pins[name.removeprefix("*")] = digest
    return pins


def _problems(folder: Path) -> list[str]:
    """Every schema file that is unpinned, changed, or pinned but gone."""
    pins = _pins(folder)
    files = {p.name for p in folder.glob("*.schema.json")}
    out = [f"{name}: not pinned in SHA256SUMS" for name in sorted(files - set(pins))]
    out += [f"{name}: pinned but missing" for name in sorted(set(pins) - files)]
    for name in sorted(files & set(pins)):
        if hashlib.sha256((folder / name).read_bytes()).hexdigest() != pins[name]:
            out.append(f"{name}: changed since it was frozen")
    return out


def test_every_schema_is_pinned_and_unchanged() -> None:
    assert _pins(SCHEMAS), "SHA256SUMS pins nothing"
    assert _problems(SCHEMAS) == []


def test_a_changed_added_or_removed_schema_is_caught(tmp_path: Path) -> None:
    copy = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, copy)
    assert _problems(copy) == []
    target = copy / "bundle-1.0.schema.json"
    target.write_bytes(target.read_bytes().replace(b'"', b"'", 1))  # one byte
    (copy / "bundle-1.1.schema.json").write_text("{}")
    (copy / "return-1.0.schema.json").unlink()
    assert _problems(copy) == [
        "bundle-1.1.schema.json: not pinned in SHA256SUMS",
        "return-1.0.schema.json: pinned but missing",
        "bundle-1.0.schema.json: changed since it was frozen",
    ]
