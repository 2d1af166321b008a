"""Which notebook file a run came from (papermill, the kernel's own path, the bundle) and whether it is stale."""

from __future__ import annotations

import html
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .bundle import Bundle
from .display import in_kernel
from .vocab import BUNDLE_ID, FILES, METADATA_KEY

# papermill 2.x CLI options that take no value, or two; every other option takes one (papermill/cli.py).
_PAPERMILL_FLAGS = {
    "--help-notebook",
    "--inject-input-path",
    "--inject-output-path",
    "--inject-paths",
    "--request-save-on-cell-execute",
    "--no-request-save-on-cell-execute",
    "--prepare-only",
    "--prepare-execute",
    "--progress-bar",
    "--no-progress-bar",
    "--log-output",
    "--no-log-output",
    "--report-mode",
    "--no-report-mode",
    "--version",
    "-h",
    "--help",
}
_PAPERMILL_PAIRS = {"-p", "--parameters", "-r", "--parameters_raw"}


def _papermill_cli_output(argv: list[str]) -> tuple[str | None, str | None]:
    """(OUTPUT_PATH, --cwd) of a ``papermill [OPTIONS] NOTEBOOK_PATH OUTPUT_PATH`` command line (or python -m)."""
    starts = [i for i, a in enumerate(argv[:3]) if Path(a).name == "papermill"]
    if not starts:
        return None, None
    args, positional, i, cwd = argv[starts[0] + 1 :], [], 0, None
    while i < len(args):
        arg = args[i]
        if arg == "--":
            positional += args[i + 1 :]
            break
        if arg.startswith("-") and arg != "-":
            attached = "=" in arg if arg.startswith("--") else len(arg) > 2  # --opt=v, -kpython3
            if arg == "--cwd" and i + 1 < len(args):
                cwd = args[i + 1]
            elif arg.startswith("--cwd="):
                cwd = arg[len("--cwd=") :]
            i += 1 if attached or arg in _PAPERMILL_FLAGS else 3 if arg in _PAPERMILL_PAIRS else 2
            continue
        positional.append(arg)
        i += 1
    return (positional[1] if len(positional) > 1 else None), cwd


def _ancestors(limit: int = 4) -> list[tuple[list[str], Path]]:
    """(argv, cwd) of the processes above this one, nearest first (Linux /proc; empty elsewhere)."""
    found: list[tuple[list[str], Path]] = []
    pid = os.getppid()
    while pid > 1 and len(found) < limit:
        try:
            argv = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        found.append((argv, cwd))
    return found


def _ipython() -> Any:
    return sys.modules["IPython"].get_ipython() if in_kernel() else None


def _papermill_output() -> Path | None:
    """papermill's output notebook, which it rewrites as each cell starts; papermill does not tell the kernel where.

    ``PAPERMILL_OUTPUT_PATH`` (papermill's --inject-output-path or --inject-paths) names it; otherwise the papermill
    command line that started this kernel does. A file counts only if papermill's metadata in it says it is an output.
    """
    procs = _ancestors()
    bases = [cwd for _, cwd in procs] + [Path.cwd()]
    raw: list[tuple[str, list[Path]]] = []
    injected = (getattr(_ipython(), "user_ns", None) or {}).get("PAPERMILL_OUTPUT_PATH")
    if isinstance(injected, str):
        raw.append((injected, bases))
    for argv, cwd in procs:
        out, moved = _papermill_cli_output(argv)
        if out:
            # papermill writes relative to the directory it started in; with --cwd it has since moved into that one.
            started = [cwd]
            if moved and not Path(moved).is_absolute():
                depth = len(Path(os.path.normpath(moved)).parts)
                started = [cwd.parents[depth - 1]] if 0 < depth <= len(cwd.parents) else []
            raw.append((out, started))
    for text, dirs in raw:
        if text in ("", "-") or "://" in text or "{" in text:
            continue  # stdout, a remote store, or a path papermill formats with parameters
        for base in dirs:
            cand = base / text
            try:
                meta = json.loads(cand.read_bytes()).get("metadata", {}).get("papermill", {})
            except (OSError, ValueError, AttributeError):
                continue
            if cand.suffix == ".ipynb" and isinstance(meta, dict) and meta.get("output_path"):
                return cand
    return None


def find_notebook(bundle: Bundle) -> tuple[Path | None, str]:
    """The notebook file to send and where it was found: NBPACK_NOTEBOOK, papermill, jupyter or bundle."""
    nb_name = (bundle.manifest.get("payload") or {}).get("notebook", "")
    candidates: list[tuple[Path, str]] = []
    if os.environ.get("NBPACK_NOTEBOOK"):
        candidates.append((Path(os.environ["NBPACK_NOTEBOOK"]), "NBPACK_NOTEBOOK"))
    papermill = _papermill_output()
    if papermill is not None:
        candidates.append((papermill, "papermill"))
    session = os.environ.get("JPY_SESSION_NAME")
    if session:
        # jupyter_server sets it to the notebook path, relative to the server root or absolute.
        candidates += [
            (p, "jupyter") for p in (Path(session), Path.cwd() / Path(session).name, bundle.root / Path(session).name)
        ]
    if nb_name:
        candidates.append((bundle.root / nb_name, "bundle"))
    for cand, source in candidates:
        if cand.is_file() and cand.suffix == ".ipynb":
            return cand, source
    renamed = _renamed_notebook(bundle, [bundle.root, Path.cwd()])
    return (renamed, "bundle") if renamed is not None else (None, "")


# A renamed copy is looked for among a folder's notebooks, not in a whole home: bounded in count and size.
_SCAN_FILES, _SCAN_BYTES = 200, 64 << 20


def _renamed_notebook(bundle: Bundle, folders: list[Path]) -> Path | None:
    """The newest ``*.ipynb`` in ``folders`` whose metadata names this bundle (the lone notebook's
    ``metadata.nbpack.bundle_id``, or its remote files prefix): a browser saves a second download as ``nb (1).ipynb``,
    and a user may rename the file; the run's results are the same."""
    files_prefix = (bundle.remote or {}).get(FILES)
    found: list[tuple[float, Path]] = []
    seen: set[Path] = set()
    for folder in folders:
        try:
            names = sorted(folder.glob("*.ipynb"))[:_SCAN_FILES]
        except OSError:
            continue
        for path in names:
            try:
                real, stat = path.resolve(), path.stat()
                if real in seen or stat.st_size > _SCAN_BYTES:
                    continue
                seen.add(real)
                meta = (json.loads(path.read_bytes()).get("metadata") or {}).get("nbpack") or {}
            except (OSError, ValueError, AttributeError):
                continue
            if not isinstance(meta, dict):
                continue
            remote = meta.get(METADATA_KEY)
            remote = remote if isinstance(remote, dict) else {}
            if (bundle.id and meta.get(BUNDLE_ID) == bundle.id) or (files_prefix and remote.get(FILES) == files_prefix):
                found.append((stat.st_mtime, path))
    return max(found)[1] if found else None


def _notebook_path(bundle: Bundle) -> Path | None:
    return find_notebook(bundle)[0]


def read_notebook(path: Path) -> tuple[bytes, dict | None]:
    """The file's bytes and parsed JSON; papermill may be rewriting it (not atomically) as we read: retry a little."""
    data = b""
    for _ in range(5):
        data = path.read_bytes()
        try:
            doc = json.loads(data)
            return data, doc if isinstance(doc, dict) else None
        except ValueError:
            time.sleep(0.2)
    return data, None


def notebook_state(doc: dict | None) -> dict:
    """Whether the notebook file holds what this kernel ran before the current cell.

    JupyterLab's Run All does not save: the file then lacks the last cell the kernel ran (same execution count and
    source). ``stale`` is None outside a kernel, where there is nothing to compare with.
    """
    saved = [
        c
        for c in (doc or {}).get("cells", [])
        if isinstance(c, dict) and c.get("cell_type") == "code" and isinstance(c.get("execution_count"), int)
    ]
    state: dict[str, Any] = {
        "stale": None,
        "saved_last_execution": max((c["execution_count"] for c in saved), default=None),
    }
    hist = getattr(getattr(_ipython(), "history_manager", None), "input_hist_raw", None)
    if not isinstance(hist, list) or doc is None:
        return state
    # hist[0] is empty and hist[-1] is the cell running now (IPython's own execution_count differs across versions).
    ran = len(hist) - 2
    state["kernel_last_execution"] = ran if ran >= 1 else None
    if ran < 1:
        state["stale"] = False
        return state

    def source(cell: dict) -> str:
        src = cell.get("source", "")
        return "".join(src) if isinstance(src, list) else str(src)

    state["stale"] = not any(c["execution_count"] == ran and source(c).strip() == str(hist[ran]).strip() for c in saved)
    return state


# JupyterLab 4 and Notebook 7 run a trusted application/javascript output (their javascript-extension), but give
# it no handle on the app: the save goes through the app's own key handling, as a Ctrl+S (Cmd+S on a Mac) on the
# output. Lumino reads keyCode, which a synthetic event only has when defined on it. The output is laid out after
# the code runs, hence the timeout; past the deadline (a notebook reopened later) it does nothing.
_SAVE_JS = """\
(function (node) {
  if (!node || Date.now() > %d) return;
  setTimeout(function () {
    var panel = node.closest && node.closest('.jp-NotebookPanel');
    if (!panel || panel.offsetParent === null) return;
    var mac = /Mac|iPhone|iPad/.test(navigator.platform);
    var ev = new KeyboardEvent('keydown', {key: 's', code: 'KeyS', ctrlKey: !mac, metaKey: mac, bubbles: true,
                                           cancelable: true});
    Object.defineProperty(ev, 'keyCode', {get: function () { return 83; }});
    node.dispatchEvent(ev);
  }, 0);
})(typeof element === 'undefined' ? null : (element[0] || element));
"""


def save_from_frontend(notebook: Path) -> tuple[bytes, dict | None, dict] | None:
    """Ask the Jupyter front end to save the notebook; the file, once it holds what the kernel ran (else None)."""
    from IPython.display import display

    wait = float(os.environ.get("NBPACK_SAVE_WAIT", "5"))
    deadline_ms = int((time.time() + 60) * 1000)
    handle = display(
        {
            "application/javascript": _SAVE_JS % deadline_ms,
            "text/plain": "nbpack: asking Jupyter to save this notebook",
        },
        raw=True,
        display_id=True,
    )
    seen = None
    end = time.monotonic() + wait
    try:
        while time.monotonic() < end:
            time.sleep(0.25)
            try:
                stamp = notebook.stat().st_mtime_ns
            except OSError:
                continue
            if stamp == seen:
                continue
            seen = stamp
            data, doc = read_notebook(notebook)
            state = notebook_state(doc)
            if state["stale"] is False:
                return data, doc, state
    finally:
        # The saved output must not ask again when the notebook is opened later.
        handle.update({"text/plain": "nbpack: asked Jupyter to save this notebook"}, raw=True)
    return None


def stale_message(name: str, state: dict) -> tuple[str, str]:
    saved = state.get("saved_last_execution")
    was = f"up to In [{saved}]" if saved else "with no outputs"
    text = (
        f"nbpack: {name} on disk is older than what this kernel ran (saved {was}; the kernel ran In "
        f"[{state.get('kernel_last_execution')}]). This return carries the notebook as last saved. To send the "
        "current one, save the notebook (Ctrl+S, or File > Save Notebook) and run this cell again."
    )
    return text, f"<p style='color:#b00;font-weight:bold'>{html.escape(text)}</p>"


def kernel_name(notebook: Path | None) -> str:
    try:
        meta = json.loads(notebook.read_text()).get("metadata", {}) if notebook else {}
        return meta.get("kernelspec", {}).get("name") or "python3"
    except (OSError, ValueError, AttributeError):
        return "python3"
