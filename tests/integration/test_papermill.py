"""papermill on an unpacked bundle, and `nbpack run -p`: the return carries the executed notebook with papermill's
injected-parameters cell, and its manifest records the parameters. The real papermill CLI, a real kernel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import scrapbook

from nbpack.bundle.build import BuildSpec, build_bundle
from nbpack.bundle.schema import iter_errors
from nbpack.cli import main
from nbpack.runtime.nbpack_runtime.notebook_file import _papermill_cli_output
from tests.helpers import template_notebook

PAPERMILL = Path(sys.executable).parent / "papermill"
WORK = """\
print("threshold is", threshold, "label is", label)
nbpack_runtime.save_value("threshold", threshold)
nbpack_runtime.save_value("label", label)"""


def _bundle(tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle.zip"
    nb = template_notebook(WORK, parameters='threshold = 1\nlabel = "none"')
    build_bundle(BuildSpec(title="Params", notebook=nb, notebook_name="nb.ipynb"), bundle)
    return bundle


def _unpack(bundle: Path, folder: Path) -> None:
    main(["open", str(bundle), "--dir", str(folder), "--no-lab"])


def _return(folder: Path) -> tuple[dict, dict, Path]:
    zips = list(folder.glob("nbpack-return-*.zip"))
    assert len(zips) == 1, zips
    with zipfile.ZipFile(zips[0]) as zf:
        manifest = json.loads(zf.read("nbpack-return.json"))
        nb_bytes = zf.read(manifest["notebook"])
    nb_file = folder / "returned.ipynb"
    nb_file.write_bytes(nb_bytes)
    return manifest, json.loads(nb_bytes), nb_file


def _text(value: str | list[str]) -> str:
    return "".join(value) if isinstance(value, list) else value


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _check_executed(nb: dict, threshold: object, label: str) -> str:
    """The notebook is the executed one: injected cell after `parameters`, before the bootstrap, and outputs."""
    tags = [_tags(c) for c in nb["cells"]]
    at = [i for i, t in enumerate(tags) if "injected-parameters" in t]
    assert len(at) == 1 and "parameters" in tags[at[0] - 1] and "nbpack-bootstrap" in tags[at[0] + 1]
    injected = "".join(nb["cells"][at[0]]["source"])
    assert f"threshold = {threshold}" in injected
    work = next(c for c in nb["cells"] if "threshold is" in "".join(c["source"]))
    text = "".join(_text(o.get("text", "")) for o in work["outputs"] if o["output_type"] == "stream")
    assert text == f"threshold is {threshold} label is {label}\n"
    return injected


@pytest.mark.parametrize("layout", ["issue", "options-first"])
def test_papermill_cli_run_returns_the_executed_notebook(tmp_path: Path, layout: str) -> None:
    folder = tmp_path / "unpacked"
    _unpack(_bundle(tmp_path), folder)
    env = {**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    env.pop("NBPACK_NOTEBOOK", None)
    if layout == "issue":
        # Exactly the command, run in the unpacked folder.
        cmd = [str(PAPERMILL), "nb.ipynb", "out.ipynb", "-p", "threshold", "15", "-p", "label", "a, b"]
        cwd, out = folder, folder / "out.ipynb"
    else:
        # Options before the paths, the output elsewhere and relative to papermill's working directory.
        (tmp_path / "runs").mkdir()
        # papermill resolves the output against the directory it started in, not --cwd (where the kernel runs).
        cmd = [
            str(PAPERMILL),
            "-k",
            "python3",
            "--log-level",
            "WARNING",
            "-p",
            "threshold",
            "15",
            "--cwd",
            "unpacked",
            "--no-progress-bar",
            "-r",
            "label",
            "a, b",
            "unpacked/nb.ipynb",
            "runs/out.ipynb",
        ]
        cwd, out = tmp_path, tmp_path / "runs" / "out.ipynb"
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest, nb, nb_file = _return(folder)
    assert iter_errors(manifest, "return") == []
    _check_executed(nb, 15, "a, b")
    # papermill's final write of its output equals what the return carries, but for the results cell's own record.
    assert [c["source"] for c in json.loads(out.read_text())["cells"]] == [c["source"] for c in nb["cells"]]
    prov = manifest["provenance"]
    assert prov["parameters"] == {"threshold": 15, "label": "a, b"}
    assert prov["notebook_file"]["source"] == "papermill" and prov["notebook_file"]["stale"] is False
    scraps = scrapbook.read_notebook(str(nb_file)).scraps
    assert scraps["threshold"].data == 15 and scraps["label"].data == "a, b"
    assert scrapbook.read_notebook(str(nb_file)).parameters == {"threshold": 15, "label": "a, b"}
    # The bundle's own notebook, which papermill only read, is untouched.
    assert not any("injected-parameters" in _tags(c) for c in json.loads((folder / "nb.ipynb").read_text())["cells"])


def test_nbpack_run_p_injects_parameters_as_papermill_does(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bundle = _bundle(tmp_path)
    ret = tmp_path / "ret.zip"
    main(["run", str(bundle), "-o", str(ret), "-p", "threshold", "2.5", "-p", "label", "a, b", "--timeout", "120"])
    assert "(status completed)" in capsys.readouterr().out
    with zipfile.ZipFile(ret) as zf:
        manifest = json.loads(zf.read("nbpack-return.json"))
        nb = json.loads(zf.read("nb.ipynb"))
    assert iter_errors(manifest, "return") == []
    injected = _check_executed(nb, 2.5, "a, b")
    assert manifest["provenance"]["parameters"] == {"threshold": 2.5, "label": "a, b"}
    assert manifest["provenance"]["notebook_file"] == {
        "source": "NBPACK_NOTEBOOK",
        "stale": False,
        "saved_last_execution": 4,
        "kernel_last_execution": 4,
    }
    assert {v["name"]: v["data"] for v in manifest["values"]} == {"threshold": 2.5, "label": "a, b"}

    # Byte for byte the cell papermill's own CLI injects for the same parameters.
    folder = tmp_path / "pm"
    _unpack(bundle, folder)
    subprocess.run(
        [str(PAPERMILL), "nb.ipynb", "out.ipynb", "--prepare-only", "-p", "threshold", "2.5", "-p", "label", "a, b"],
        cwd=folder,
        check=True,
        capture_output=True,
        timeout=120,
    )
    pm = json.loads((folder / "out.ipynb").read_text())
    assert "".join(next(c for c in pm["cells"] if "injected-parameters" in _tags(c))["source"]) == injected


def test_nbpack_run_p_unknown_parameter_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bundle = _bundle(tmp_path)
    ret = tmp_path / "ret.zip"
    with pytest.raises(SystemExit) as exc:
        main(["run", str(bundle), "-o", str(ret), "-p", "treshold", "3"])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["nbpack: error: notebook nb.ipynb has no parameter 'treshold'; its parameters are: threshold, label"]
    assert not ret.exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/venv/bin/python", "/venv/bin/papermill", "nb.ipynb", "out.ipynb", "-p", "a", "1"], ("out.ipynb", None)),
        (["python", "-m", "papermill", "-p", "a", "1", "--log-output", "nb.ipynb", "o.ipynb"], ("o.ipynb", None)),
        (
            ["papermill", "-kpython3", "--cwd=/x", "-r", "b", "x y", "--cwd", "y", "in.ipynb", "--", "-o.ipynb"],
            ("-o.ipynb", "y"),
        ),
        (["papermill", "-f", "p.yaml", "--report-mode", "nb.ipynb"], (None, None)),
        (["/usr/bin/python3", "-m", "ipykernel_launcher", "-f", "k.json"], (None, None)),
    ],
)
def test_papermill_command_lines_parse(argv: list[str], expected: tuple) -> None:
    assert _papermill_cli_output(argv) == expected


def test_papermill_python_api_with_injected_output_path(tmp_path: Path) -> None:
    """papermill's Python API from a script: the kernel's parent is not papermill's CLI, so the output is found through
    PAPERMILL_OUTPUT_PATH, the parameter papermill's --inject-output-path adds (here passed by hand)."""
    folder = tmp_path / "unpacked"
    _unpack(_bundle(tmp_path), folder)
    script = (
        "import sys, papermill\n"
        "papermill.execute_notebook('nb.ipynb', sys.argv[1], progress_bar=False,\n"
        "    parameters={'threshold': 7, 'PAPERMILL_OUTPUT_PATH': sys.argv[1]})\n"
    )
    out = tmp_path / "api-out.ipynb"
    env = {k: v for k, v in os.environ.items() if k != "NBPACK_NOTEBOOK"}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(out)], cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest, nb, _ = _return(folder)
    _check_executed(nb, 7, "none")
    assert manifest["provenance"]["notebook_file"]["source"] == "papermill"
    assert manifest["provenance"]["parameters"] == {"threshold": 7, "PAPERMILL_OUTPUT_PATH": str(out)}


def test_the_option_table_matches_papermills_own_cli() -> None:
    """The command-line reading knows which of papermill's options take no value or two: checked against its CLI."""
    import click
    from papermill.cli import papermill as command

    from nbpack.runtime.nbpack_runtime.notebook_file import _PAPERMILL_FLAGS, _PAPERMILL_PAIRS

    flags, pairs = set(), set()
    for param in command.get_params(click.Context(command, **command.context_settings)):  # with -h/--help
        if param.param_type_name != "option":
            continue
        names = [*param.opts, *param.secondary_opts]
        if param.is_flag or param.secondary_opts:
            flags.update(names)
        elif param.nargs == 2:
            pairs.update(names)
    assert flags == _PAPERMILL_FLAGS and pairs == _PAPERMILL_PAIRS
