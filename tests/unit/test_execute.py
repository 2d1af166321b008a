"""nbpack/local/execute.py without a kernel: ``-p`` values typed as papermill's CLI types them, parameters injected
by papermill's own code (and refused when the notebook has no such parameter), the one-line error. Running a kernel
(run_folder, run_bundle) is tests/integration's: it needs a real kernel, which this tier never starts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from nbclient.exceptions import CellExecutionError

from nbpack.errors import InvalidInput
from nbpack.local.execute import _error_line, inject_parameters, parameter_value
from tests.helpers import template_notebook

BIG = 2**53 + 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("True", True),
        ("None", None),
        ("true", "true"),  # only Python's spelling, as papermill
        (str(BIG), BIG),  # an int, never through float
        ("-0.5", -0.5),
        ("1e3", 1000.0),
        ("a, é", "a, é"),
        ("", ""),
    ],
)
def test_parameter_values_are_typed_as_papermill_does(text: str, expected: object) -> None:
    value = parameter_value(text)
    assert value == expected and type(value) is type(expected)


def test_nan_stays_a_float_nan() -> None:
    assert math.isnan(parameter_value("nan"))


def _notebook(path: Path, *sources: str, parameters: str | None = None) -> Path:
    """A template notebook with the kernelspec every built bundle's notebook has (papermill reads it)."""
    doc = json.loads(template_notebook(*sources, parameters=parameters))
    doc["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.write_text(json.dumps(doc), "utf-8")
    return path


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text("utf-8"))["cells"]


def test_parameters_are_injected_after_the_parameters_cell(tmp_path: Path) -> None:
    nb = _notebook(tmp_path / "n.ipynb", "y = threshold * 2", parameters="threshold = 1\nname = 'x'")
    inject_parameters(nb, {"threshold": BIG, "name": 'quote " and , é'}, "python3")
    cells = _cells(nb)
    tags = [c["metadata"].get("tags", []) for c in cells]
    injected = tags.index(["injected-parameters"])
    assert tags[injected - 1] == ["parameters"] and "".join(cells[injected + 1]["source"]) == "y = threshold * 2"
    namespace: dict = {}
    exec("".join(cells[injected]["source"]), namespace)  # noqa: S102 - the cell the kernel would run
    assert namespace["threshold"] == BIG and namespace["name"] == 'quote " and , é'


def test_unknown_parameters_and_notebooks_without_any_are_refused(tmp_path: Path) -> None:
    nb = _notebook(tmp_path / "n.ipynb", "x = 1", parameters="threshold = 1")
    before = nb.read_bytes()
    with pytest.raises(InvalidInput, match="no parameter 'thresold'; its parameters are: threshold"):
        inject_parameters(nb, {"thresold": 2}, "python3")
    assert nb.read_bytes() == before
    bare = _notebook(tmp_path / "bare.ipynb", "x = 1")
    with pytest.raises(InvalidInput, match="no cell tagged 'parameters'"):
        inject_parameters(bare, {"x": 1}, "python3")


def test_an_error_is_one_short_line() -> None:
    cell = CellExecutionError("traceback\nmore", "ZeroDivisionError", "division by zero\nsecond line")
    assert _error_line(cell) == "ZeroDivisionError: division by zero"
    assert _error_line(RuntimeError("x" * 1000)) == ("RuntimeError: " + "x" * 1000)[:500]
    assert _error_line(RuntimeError("")) == "RuntimeError:"
