"""The bundle's notebook: the template (or a starter), with the bootstrap and results cells put in place."""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.warnings import MissingIDFieldWarning

from nbpack.errors import InvalidNotebook

__all__ = [
    "BOOTSTRAP_TAG",
    "RESULTS_TAG",
    "KERNELSPEC",
    "read_notebook",
    "starter_notebook",
    "prepare_notebook",
    "bootstrap_source",
    "notebook_bytes",
    "tagged_cells",
]

BOOTSTRAP_TAG = "nbpack-bootstrap"
RESULTS_TAG = "nbpack-results"
# The bootstrap cell's line the service fills in when it serves the notebook alone (nbpack.bundle.lone.served_notebook).
FILES_LINE = "NBPACK_FILES = None"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

# The first lines decide where the bundle is: beside the notebook (a zip, a clone, `nbpack run`), or, for a notebook
# served alone (links.notebook), at the service whose files URL the service wrote into NBPACK_FILES. Alone, the cell
# can rely on nothing but the standard library until it has fetched and checked the runtime, hence _nbpack_alone.
BOOTSTRAP_SOURCE = """\
# nbpack bootstrap: loads this bundle's catalogs and file references. Re-running it is safe.
# Beside its bundle (nbpack.json, nbpack_runtime/) it opens that. Opened alone, it fetches the runtime and the
# manifest from the nbpack service that served it, and runs the runtime only if it matches the pin set at build.
NBPACK_FILES = None  # the service writes its files URL here when it serves this notebook alone
NBPACK_RUNTIME_PIN = "@PIN@"  # sha256 over the runtime's (path, sha256) list


def _nbpack_alone():
    import hashlib, json, os, sys, urllib.request
    from pathlib import Path

    class NbpackRefused(Exception):
        def _render_traceback_(self):  # IPython shows this one line, not a traceback
            return [f"nbpack: error: {self}"]

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):  # the URL carries the capability: never follow it elsewhere
            return None

    def get(rel, limit=64 << 20):
        try:
            with urllib.request.build_opener(NoRedirect).open(NBPACK_FILES + rel, timeout=60) as answer:
                data = answer.read(limit + 1)
        except OSError as err:
            raise NbpackRefused(f"cannot fetch {rel} from the nbpack service: {err}") from None
        if len(data) > limit:
            raise NbpackRefused(f"{rel} from the nbpack service is larger than {limit} bytes")
        return data

    manifest = json.loads(get("nbpack.json"))
    runtime = sorted((c["path"], c["sha256"]) for c in manifest["contents"] if c["path"].startswith("nbpack_runtime/"))
    pin = hashlib.sha256("".join(f"{p}\\0{d}\\n" for p, d in runtime).encode()).hexdigest()
    if pin != NBPACK_RUNTIME_PIN:
        raise NbpackRefused(f"the service's runtime ({pin}) is not the one this notebook was built with "
                            f"({NBPACK_RUNTIME_PIN}); refusing to run it")
    home = Path(os.environ.get("NBPACK_CACHE") or Path.home() / ".cache" / "nbpack") / "runtime" / pin
    for rel, digest in runtime:
        path = home / rel
        if not (path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest):
            data = get(rel, 1 << 20)
            if hashlib.sha256(data).hexdigest() != digest:
                raise NbpackRefused(f"{rel} from the nbpack service does not match the pinned runtime; refusing it")
            path.parent.mkdir(parents=True, exist_ok=True)
            part = path.with_name(f".{path.name}.{os.getpid()}")  # two kernels may fetch at once
            part.write_bytes(data)
            os.replace(part, path)
    for name in [m for m in sys.modules if m.split(".")[0] == "nbpack_runtime"]:
        if not str(getattr(sys.modules[name], "__file__", "")).startswith(str(home)):
            del sys.modules[name]  # another copy of the runtime: this notebook runs the pinned one
    if str(home) not in sys.path:
        sys.path.insert(0, str(home))
    import nbpack_runtime

    return nbpack_runtime.start_alone(NBPACK_FILES, manifest)


import os

if NBPACK_FILES and not (os.path.isfile("nbpack.json") or os.environ.get("NBPACK_BUNDLE_DIR")):
    bundle = _nbpack_alone()
    import nbpack_runtime
else:
    import nbpack_runtime

    bundle = nbpack_runtime.start()
# Catalogs as pyarrow Tables; bundle.catalog(name, as_="pandas") or as_="astropy" keeps units.
catalogs = {name: bundle.catalog(name) for name in bundle.catalogs}
# File references: bundle.file(name) downloads on first use, verifies checksums, returns a local path.
files = bundle.files"""

RESULTS_SOURCE = """\
# nbpack results: packs outputs/ (nbpack_runtime.save_output), named values (nbpack_runtime.save_value)
# and this notebook as last saved into a return bundle, and sends it back. Save the notebook first.
nbpack_runtime.finish()"""


def read_notebook(data: bytes | str, where: str = "notebook") -> NotebookNode:
    """Parse and validate a notebook (any nbformat 4 minor version), raising ``InvalidNotebook``."""
    # Cells without ids (nbformat 4.5) get stable ones in prepare_notebook; nbformat's warning is only noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingIDFieldWarning)
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            # reads() validates already (and only logs what it finds): keep its verdict rather than validate twice
            # (a schema pass is a third of a small return's validation CPU).
            invalid: dict[str, Any] = {}
            nb = nbformat.reads(text, as_version=4, capture_validation_error=invalid)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidNotebook(f"{where} is not a notebook: not valid JSON ({exc})") from None
        except Exception as exc:  # nbformat raises assorted errors for malformed documents
            # Some end in a newline ("Unsupported nbformat version \n"): one line, as every error message is.
            raise InvalidNotebook(f"{where} is not a notebook: {' '.join(str(exc).split())[:300]}") from None
        try:
            if "ValidationError" in invalid:
                raise invalid["ValidationError"]
            # Lone surrogates (legal as JSON escapes) would break every later write of the notebook.
            json.dumps(nb, ensure_ascii=False).encode("utf-8")
        except nbformat.ValidationError as exc:
            message = " ".join(str(exc.message).split())[:300]
            raise InvalidNotebook(f"{where} is not a valid notebook: {message}") from None
        except UnicodeEncodeError:
            raise InvalidNotebook(f"{where} holds text that is not valid Unicode (a lone surrogate escape)") from None
        except RecursionError:
            raise InvalidNotebook(f"{where} is nested too deeply") from None
    return nb


def _cell(kind: str, source: str, cell_id: str, tags: list[str] | None = None) -> NotebookNode:
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    cell = make(source)
    # Fixed ids keep builds byte-reproducible (nbformat would draw random ones).
    cell["id"] = cell_id
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def starter_notebook(
    title: str, catalogs: list[dict[str, Any]], files: list[dict[str, Any]], requirements: list[str]
) -> NotebookNode:
    """A small notebook that shows what the bundle holds, for payloads without a notebook."""
    nb = nbformat.v4.new_notebook()
    lines = [f"# {title}", "", "This notebook was generated by nbpack. The first code cell loads the bundle."]
    if catalogs:
        lines += ["", "**Catalogs:** " + ", ".join(f"`{c['name']}` ({c['rows']} rows)" for c in catalogs)]
    if files:
        lines += ["", f"**Files:** {len(files)} data-lake reference(s), fetched on demand."]
    if requirements:
        lines += ["", "**Software:** " + ", ".join(f"`{r}`" for r in requirements)]
    cells = [_cell("markdown", "\n".join(lines), "nbpack-intro")]
    for i, cat in enumerate(catalogs):
        # pyarrow only, as requirements.txt promises: as_="pandas" would need a package the bundle may not declare.
        src = f"table = bundle.catalog({cat['name']!r})\ntable.slice(0, 5).to_pylist()"
        cells.append(_cell("code", src, f"nbpack-catalog-{i}"))
    if files:
        src = 'for name, ref in files.items():\n    print(name, ref.uri)\n# path = bundle.file("NAME")'
        cells.append(_cell("code", src, "nbpack-files"))
    src = (
        "# Keep what matters: files under outputs/ and named values travel back in the return bundle.\n"
        'nbpack_runtime.save_value("catalog_rows", {n: t.num_rows for n, t in catalogs.items()})'
    )
    cells.append(_cell("code", src, "nbpack-save"))
    nb.cells = cells
    return nb


def tagged_cells(nb: NotebookNode, tag: str) -> list[int]:
    """Indexes of the cells carrying ``tag``."""
    return [i for i, c in enumerate(nb.cells) if tag in c.get("metadata", {}).get("tags", [])]


def bootstrap_source(runtime_pin: str = "") -> str:
    """The bootstrap cell, pinned to the runtime whose ``nbpack.bundle.lone.runtime_pin`` is ``runtime_pin``."""
    return BOOTSTRAP_SOURCE.replace("@PIN@", runtime_pin)


def prepare_notebook(nb: NotebookNode, runtime_pin: str = "") -> NotebookNode:
    """Put the bootstrap cell first (after a papermill ``parameters`` cell) and the results cell last.

    Cells from an earlier build are removed first, so building twice never duplicates them. ``runtime_pin`` is the
    pin of the runtime the bundle carries (without one, a notebook served alone refuses every runtime).
    """
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.cells = [c for c in nb.cells if not {BOOTSTRAP_TAG, RESULTS_TAG} & set(c.get("metadata", {}).get("tags", []))]
    params = tagged_cells(nb, "parameters") + tagged_cells(nb, "injected-parameters")
    at = max(params) + 1 if params else 0
    boot = _cell("code", bootstrap_source(runtime_pin), BOOTSTRAP_TAG, [BOOTSTRAP_TAG])
    # Folded in JupyterLab (and in the landing page's preview): 50 lines of plumbing before the user's first cell.
    boot.metadata["jupyter"] = {"source_hidden": True}
    nb.cells.insert(at, boot)
    nb.cells.append(_cell("code", RESULTS_SOURCE, RESULTS_TAG, [RESULTS_TAG]))
    nb.metadata.setdefault("kernelspec", dict(KERNELSPEC))
    nb.metadata.setdefault("language_info", {"name": "python"})
    # nbformat 4.5 wants ids; templates from older tools may lack them: derive stable ones.
    seen: set[str] = set()
    for i, cell in enumerate(nb.cells):
        cid = cell.get("id")
        if not cid or cid in seen or not re.fullmatch(r"[a-zA-Z0-9-_]{1,64}", cid):
            cell["id"] = f"cell-{i}"
        seen.add(cell["id"])
    nb.nbformat, nb.nbformat_minor = 4, max(5, nb.get("nbformat_minor", 5))
    nbformat.validate(nb)
    return nb


def notebook_bytes(nb: NotebookNode) -> bytes:
    """Serialise a notebook deterministically (sorted keys, trailing newline)."""
    return (nbformat.writes(nb) + "\n").encode("utf-8")
