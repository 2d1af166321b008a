"""Run a bundle with no browser: unpack it, execute its notebook in a real kernel, write the return bundle."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from nbpack import runtime as runtime_pkg
from nbpack.bundle import archive
from nbpack.bundle.build import RUNTIME_PACKAGE, open_bundle
from nbpack.bundle.notebook import notebook_bytes, read_notebook, tagged_cells
from nbpack.errors import InvalidInput, NbpackError

__all__ = ["RunResult", "run_bundle", "run_folder", "parameter_value", "inject_parameters"]


class NotebookFailed(NbpackError):
    code = "notebook_failed"


@dataclass
class RunResult:
    """What a run produced: the return bundle path, its status and the error line if it failed.

    With ``upload``: the service's answer, or the one-line reason the upload failed (the zip stays at
    ``return_path``)."""

    return_path: Path
    status: str
    error: str | None
    notebook: Path
    uploaded: dict | None = None
    upload_error: str | None = None


def _error_line(exc: BaseException) -> str:
    # One line: it becomes the CLI's message and the return manifest's error.
    text = f"{exc.ename}: {exc.evalue}" if isinstance(exc, CellExecutionError) else f"{type(exc).__name__}: {exc}"
    return (text.strip().splitlines() or [type(exc).__name__])[0][:500]


def parameter_value(text: str) -> Any:
    """A ``-p NAME VALUE`` value typed as papermill's CLI types it: True/False/None, int, float, else the text."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def inject_parameters(nb_path: Path, parameters: dict[str, Any], kernel_name: str) -> None:
    """Rewrite the notebook with papermill's ``injected-parameters`` cell after its ``parameters`` cell.

    papermill's own code writes the cell (its Python translator, its placement, ``metadata.papermill.parameters``),
    so a bundle run with ``nbpack run -p`` is the notebook papermill would have run.
    """
    from papermill.inspection import inspect_notebook
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    known = inspect_notebook(str(nb_path))
    if not known:
        raise InvalidInput(f"notebook {nb_path.name} has no cell tagged 'parameters'; -p has nothing to set")
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise InvalidInput(
            f"notebook {nb_path.name} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters are: {', '.join(known)}"
        )
    nb = parameterize_notebook(load_notebook_node(str(nb_path)), parameters, kernel_name=kernel_name)
    nb_path.write_bytes(notebook_bytes(nb))


def run_folder(
    folder: Path,
    out: Path,
    *,
    timeout: int = 600,
    kernel_name: str = "python3",
    upload: bool = False,
    env: dict[str, str] | None = None,
    parameters: dict[str, Any] | None = None,
    on_cell: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Execute an unpacked bundle in ``folder``; the results cell writes the return bundle to ``out``.

    ``parameters`` are injected first, the papermill way (see ``inject_parameters``); ``on_cell(index, total)`` is
    told each cell that has run (a progress bar).
    """
    import json

    from nbpack.bundle.build import MANIFEST

    manifest = json.loads((folder / MANIFEST).read_text("utf-8"))
    nb_path = folder / manifest["payload"]["notebook"]
    if parameters:
        inject_parameters(nb_path, parameters, kernel_name)
    nb = read_notebook(nb_path.read_bytes(), f"notebook {nb_path.name}")
    results_at = set(tagged_cells(nb, manifest["cells"]["results"]))
    out = Path(out).resolve()
    kernel_env = {
        **os.environ,
        **(env or {}),
        "NBPACK_NOTEBOOK": str(nb_path),
        "NBPACK_RETURN_PATH": str(out),
        "NBPACK_BUNDLE_DIR": str(folder),
    }
    if not upload:
        kernel_env["NBPACK_NO_UPLOAD"] = "1"
    else:
        kernel_env.pop("NBPACK_NO_UPLOAD", None)
    # On timeout interrupt the cell (not just stop waiting), so the kernel is free to write the failed return.
    # IPC sockets in a private folder: the kernel is only for us, and TCP would make ipykernel warn that its
    # traffic is unencrypted on every run.
    sockets = Path(tempfile.mkdtemp(prefix="nbpack-kernel-"))
    km = AsyncKernelManager(kernel_name=kernel_name, transport="ipc", ip=str(sockets / "kernel"))
    client = NotebookClient(
        nb,
        km=km,
        timeout=timeout,
        kernel_name=kernel_name,
        allow_errors=False,
        resources={"metadata": {"path": str(folder)}},
        interrupt_on_timeout=True,
        error_on_timeout={
            "ename": "CellTimeoutError",
            "traceback": [],
            "evalue": f"a cell ran longer than {timeout} s and was interrupted",
        },
    )
    error: str | None = None
    try:
        with client.setup_kernel(env=kernel_env):
            for index, cell in enumerate(nb.cells):
                if index in results_at:
                    # The results cell packs the notebook from disk: save what ran so far first.
                    nb_path.write_bytes(notebook_bytes(nb))
                try:
                    client.execute_cell(cell, index)
                except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
                    error = _error_line(exc)
                    break
                if on_cell:
                    on_cell(index, len(nb.cells))
            if error is not None:
                nb_path.write_bytes(notebook_bytes(nb))
                # nbclient's kernel client is the async one: is_alive() must be awaited.
                if client.kc is not None and run_sync(client.kc.is_alive)():  # type: ignore[attr-defined]
                    code = (
                        "import nbpack_runtime\n"
                        f"nbpack_runtime.finish(status='failed', error={error!r}, upload={upload!r})"
                    )
                    # nbclient stores the executed cell back into nb.cells[index]: give it a slot, then drop it.
                    nb.cells.append(nbformat.v4.new_code_cell(code))
                    try:
                        client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
                    except (CellExecutionError, CellTimeoutError, DeadKernelError):
                        pass
                    finally:
                        nb.cells.pop()
    finally:
        # nbclient leaves a kernel manager it was given running: stop the kernel here.
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
        shutil.rmtree(sockets, ignore_errors=True)
    nb_path.write_bytes(notebook_bytes(nb))
    if not out.is_file():
        raise NotebookFailed(f"the notebook did not write a return bundle ({error or 'results cell missing?'})")
    return RunResult(out, "failed" if error else "completed", error, nb_path)


def run_bundle(
    bundle: str | Path,
    out: str | Path,
    *,
    timeout: int = 600,
    kernel_name: str = "python3",
    upload: bool = False,
    workdir: Path | None = None,
    parameters: dict[str, Any] | None = None,
    on_cell: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Unpack ``bundle`` (checked) into a scratch folder and execute it; the return bundle goes to ``out``."""
    out = Path(out).resolve()
    if out.exists() and out.is_dir():
        raise InvalidInput(f"{out} is a folder; give a .zip path for the return bundle")
    # The runtime writes the return next to ``out``; it cannot create folders on its own.
    out.parent.mkdir(parents=True, exist_ok=True)
    with open_bundle(bundle) as bf, tempfile.TemporaryDirectory(prefix="nbpack-run-") as tmp:
        folder = Path(workdir) if workdir else Path(tmp) / bf.id
        archive.extract(bf.zf, folder)
        tmp_out = out.with_name(f".{out.name}.part")
        tmp_out.unlink(missing_ok=True)
        try:
            # The kernel never uploads: a failure there would only be printed in the results cell, naming the
            # .part path. The upload happens here, of the zip at its final path, and its outcome is returned.
            result = run_folder(
                folder,
                tmp_out,
                timeout=timeout,
                kernel_name=kernel_name,
                upload=False,
                parameters=parameters,
                on_cell=on_cell,
            )
            os.replace(tmp_out, out)
        finally:
            tmp_out.unlink(missing_ok=True)
        uploaded, upload_error = _upload(folder, out) if upload else (None, None)
        return RunResult(out, result.status, result.error, result.notebook, uploaded, upload_error)


def _upload(folder: Path, path: Path) -> tuple[dict | None, str | None]:
    """Send the return zip with the runtime's own upload (retries, direct blobs); (answer, None) or (None, why)."""
    # A private instance of nbpack's copy of the runtime: its module state is per bundle, not per process.
    name = f"_nbpack_runtime_upload_{id(path)}"
    package_dir = Path(runtime_pkg.__file__).parent / RUNTIME_PACKAGE
    spec = importlib.util.spec_from_file_location(
        name, package_dir / "__init__.py", submodule_search_locations=[str(package_dir)]
    )
    assert spec is not None and spec.loader is not None  # a file location always gives both
    rt = importlib.util.module_from_spec(spec)
    sys.modules[name] = rt  # its modules import each other under this name; dataclasses look their module up
    try:
        spec.loader.exec_module(rt)
        with contextlib.redirect_stdout(io.StringIO()):  # start() prints the bundle summary meant for a notebook
            rt.start(str(folder))
        try:
            return rt.upload(path), None
        except rt.RuntimeProblem as err:
            return None, str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    finally:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            sys.modules.pop(key, None)
