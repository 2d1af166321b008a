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
from nbpack.bundle.remote import BUNDLE_ID, FILES, LAZY, METADATA_KEY

__all__ = ["RUNTIME_PREFIX", "runtime_pin", "runtime_pin_of_files", "remote_document", "served_notebook"]

# Bundle paths of the runtime package's files (every one is listed in the manifest's contents).
RUNTIME_PREFIX = "nbpack_runtime/"


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
