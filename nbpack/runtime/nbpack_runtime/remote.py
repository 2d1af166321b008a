"""Where a thin tree finds the data it left out: the ``nbpack.remote.json`` document, read and checked.

A git tree of a bundle (nbgitpuller, BinderHub) leaves big catalogs out and holds this file at its root;
a lone notebook carries the same document in ``notebook.metadata["nbpack"]["remote"]``. Its names are ``vocab``'s,
which nbpack writes it with (``nbpack/bundle/remote.py``).
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

from .errors import RuntimeProblem
from .vocab import FILES, LAZY, METADATA_KEY, REMOTE_FILE, SIGNED, path_problem

__all__ = [
    "FILES",
    "LAZY",
    "METADATA_KEY",
    "REMOTE_FILE",
    "check_remote",
    "member_url",
    "read_remote",
    "signed_request_url",
]


def check_remote(doc: object, where: str) -> dict:
    """The document if well formed (an http(s) files prefix ending in ``/``, a list of paths), else RuntimeProblem."""
    if not isinstance(doc, dict):
        raise RuntimeProblem(f"{where}: not a JSON object")
    files = doc.get(FILES)
    if not isinstance(files, str):
        raise RuntimeProblem(f"{where}: {FILES!r} must be an http(s) URL ending in '/', got {files!r}")
    parts = urllib.parse.urlsplit(files)
    if parts.scheme not in ("http", "https") or not parts.netloc or not files.endswith("/"):
        raise RuntimeProblem(f"{where}: {FILES!r} must be an http(s) URL ending in '/', got {files!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise RuntimeProblem(f"{where}: {FILES!r} may carry no query, fragment or credentials")
    lazy = doc.get(LAZY, [])
    if not isinstance(lazy, list) or not all(isinstance(p, str) for p in lazy):
        raise RuntimeProblem(f"{where}: {LAZY!r} must be a list of member paths")
    return {FILES: files, LAZY: list(lazy)}


def read_remote(root: Path) -> dict | None:
    """The checked ``nbpack.remote.json`` beside the manifest, or None when the tree holds everything."""
    path = Path(root) / REMOTE_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (ValueError, OSError) as err:
        raise RuntimeProblem(f"{path} is not readable JSON ({err})") from None
    return check_remote(doc, str(path))


def member_url(remote: dict, path: str) -> str:
    """The files URL of one bundle member (each path segment percent-encoded)."""
    if path_problem(path):
        raise RuntimeProblem(f"{path!r} is not a bundle member path ({path_problem(path)})")
    return remote[FILES] + urllib.parse.quote(path, safe="/")


def signed_request_url(member: str) -> str:
    """Where the service answers a signed read of the member whose files URL is ``member`` (vocab.SIGNED)."""
    return f"{member}?{SIGNED}=1"
