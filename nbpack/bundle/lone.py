"""The lone notebook: a bundle's notebook served alone, able to fetch the rest of its bundle from the service.

Two things make it work without the bundle folder: the bootstrap cell carries, from the build, a pin over the runtime
(``runtime_pin``), so the runtime it fetches is the one it was built with; and the service, when it serves the
notebook through ``links.notebook``, writes where the bundle's members are (the files prefix, which carries the
handle's git token) into the cell and into ``metadata.nbpack.remote`` (``served_notebook``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from nbpack.bundle.notebook import BOOTSTRAP_TAG, FILES_LINE
from nbpack.bundle.payload_git import REPO2DOCKER_FILES
from nbpack.bundle.remote import BUNDLE_ID, FILES, LAZY, METADATA_KEY
from nbpack.runtime.nbpack_runtime.vocab import CRATE

__all__ = [
    "RUNTIME_PREFIX",
    "LAB_UPLOAD_PROMPT_BYTES",
    "lone_gap",
    "runtime_pin",
    "runtime_pin_of_files",
    "remote_document",
    "served_notebook",
]

# Bundle paths of the runtime package's files (every one is listed in the manifest's contents).
RUNTIME_PREFIX = "nbpack_runtime/"
# Members a build writes for people and image builders (repo2docker, pip, conda), read by no notebook at run time:
# a lone notebook misses nothing without them. The notebook, the runtime and the catalogs it fetches itself.
_FOR_PEOPLE_AND_IMAGES = frozenset({"README.md", "requirements.txt", "environment.yml", "runtime.txt", CRATE})
# A git payload's repo2docker files (payload_git), at the root or in its config folder: an image build reads them.
_IMAGE_FOLDERS = ("", "binder/", ".binder/")
# JupyterLab's file browser asks "upload anyway?" for a file over 15 MiB (its LARGE_FILE_SIZE, 0xf00000 in
# @jupyterlab/filebrowser's model), and jupyterlab-open-url-parameter uploads through it: a dialog more.
LAB_UPLOAD_PROMPT_BYTES = 15 * 1024 * 1024
# What the service adds to the stored notebook when it serves it (the files prefix twice, the bundle id): far less.
_SERVED_MARGIN = 64 * 1024


def runtime_pin(entries: Iterable[tuple[str, str]]) -> str:
    """sha256 over the sorted ``path\\0sha256\\n`` lines of the runtime's files (the bootstrap cell's check).

    ``entries`` are (bundle path, hex sha256) pairs; paths outside the runtime package are ignored, so the manifest's
    whole ``contents`` may be passed.
    """
    h = hashlib.sha256()
    for path, digest in sorted((p, d) for p, d in entries if p.startswith(RUNTIME_PREFIX)):
        h.update(f"{path}\0{digest}\n".encode())
    return h.hexdigest()


def runtime_pin_of_files(files: Iterable[tuple[str, bytes]]) -> str:
    """The pin of the runtime files a build copies (``bundle.runtime_files()``)."""
    return runtime_pin((path, hashlib.sha256(data).hexdigest()) for path, data in files)


def lone_gap(manifest: dict[str, Any]) -> str:
    """Why the notebook alone would lack something a clone of its bundle has ("" when it lacks nothing).

    Alone it fetches the runtime (pinned) and the manifest with its return token, reads every catalog lazily
    (verified per block) and resolves file references as a clone does; what it cannot reach is a member the payload
    brought of its own (a helper module, a data file): only a clone puts it beside the notebook. The launch rule
    (``hub.launch.launch_modes``) opens it alone only when this is "".
    """
    notebook = manifest["payload"]["notebook"]
    catalogs = {c["path"] for c in manifest.get("catalogs", [])}
    catalogs |= {c["blocks"]["path"] for c in manifest.get("catalogs", []) if c.get("blocks")}
    own = []
    size = 0
    for entry in manifest.get("contents", []):
        path = entry["path"]
        if path == notebook:
            size = int(entry["bytes"])
        elif not (
            path in catalogs
            or path.startswith(RUNTIME_PREFIX)
            or path in _FOR_PEOPLE_AND_IMAGES
            or any(path == f"{folder}{name}" for folder in _IMAGE_FOLDERS for name in REPO2DOCKER_FILES)
        ):
            own.append(path)
    if own:
        shown = ", ".join(own[:3]) + (f" and {len(own) - 3} more" if len(own) > 3 else "")
        return f"its payload brings {len(own)} file(s) of its own ({shown}) that only a clone puts beside the notebook"
    if size + _SERVED_MARGIN > LAB_UPLOAD_PROMPT_BYTES:
        return f"its notebook ({size} bytes) is big enough that JupyterLab asks before uploading it"
    return ""


def remote_document(manifest: dict[str, Any], files_prefix: str) -> dict[str, Any]:
    """Where a notebook alone finds its bundle: every catalog is remote, since none is beside it."""
    return {FILES: files_prefix, LAZY: sorted(c["path"] for c in manifest.get("catalogs", []))}


def served_notebook(stored: bytes, manifest: dict[str, Any], files_prefix: str) -> bytes:
    """The handle's notebook as ``links.notebook`` serves it.

    ``metadata.nbpack.remote`` gets the remote document and ``metadata.nbpack.bundle_id`` the bundle's id; the
    bootstrap cell's ``NBPACK_FILES = None`` line gets the files prefix, because a kernel run by nbconvert, nbclient
    or papermill is never told which file its notebook is, so the cell could not read the metadata there. A notebook
    built before that line existed keeps the metadata only.
    """
    nb = json.loads(stored)
    meta = nb.setdefault("metadata", {})
    nbpack_meta = meta.get("nbpack") if isinstance(meta.get("nbpack"), dict) else {}
    # The bundle id lets the results cell know this notebook as its own under any name (a browser's "nb (1).ipynb").
    meta["nbpack"] = {**nbpack_meta, METADATA_KEY: remote_document(manifest, files_prefix), BUNDLE_ID: manifest["id"]}
    for cell in nb.get("cells", []):
        if BOOTSTRAP_TAG not in (cell.get("metadata") or {}).get("tags", []):
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        # json.dumps of a URL is a valid Python string literal (ASCII, double-quoted, escapes included).
        cell["source"] = text.replace(FILES_LINE, FILES_LINE.replace("None", json.dumps(files_prefix)), 1)
    # nbformat's own layout (as notebook_bytes writes it): indent 1, sorted keys, trailing newline.
    return (json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
