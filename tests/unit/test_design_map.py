"""docs/design.md's module map is true to the code: each Python folder's row names every module in it, and no other."""

from __future__ import annotations

import re

from tests.helpers import REPO


def _rows() -> dict[str, set[str]]:
    text = (REPO / "docs" / "design.md").read_text("utf-8")
    table = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, set[str]] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        folder = re.fullmatch(r"`([a-z_/]+/)`(?: \(top-level modules\))?", cells[0]) if len(cells) == 3 else None
        if folder and (REPO / folder.group(1)).is_dir():
            # A module is a backticked name at the start of an item (what follows it in parentheses is its job).
            items = re.split(r",(?![^(]*\))", cells[2])
            rows[folder.group(1)] = {m.group(1) for item in items if (m := re.match(r"\s*`([a-z_0-9]+)`", item))}
    return rows


def test_every_python_folder_has_a_row_naming_exactly_its_modules() -> None:
    rows = _rows()
    folders = {"nbpack/", "server/"} | {
        p.parent.relative_to(REPO).as_posix() + "/"
        for p in (REPO / "nbpack").rglob("__init__.py")
        if p.parent.name not in ("data", "schemas") and any(q.name != "__init__.py" for q in p.parent.glob("*.py"))
    }
    assert folders <= set(rows), sorted(folders - set(rows))
    for folder in folders:
        modules = {p.stem for p in (REPO / folder).glob("*.py") if p.name != "__init__.py"}
        assert rows[folder] == modules, (folder, sorted(rows[folder] ^ modules))


def test_the_check_reads_the_table() -> None:
    rows = _rows()
    assert {"vocab", "base", "lazy"} <= rows["nbpack/runtime/nbpack_runtime/"]
    assert "zipwrite" in rows["nbpack/bundle/"] and "api" in rows["server/"]
