"""The bundle format's shared words, defined once: member names, the remote document's keys, the return-id rule,
media types and the safe member-path rule.

nbpack imports these from here (the runtime is its lowest layer and cannot import nbpack, as it is copied into
every bundle), so the service, the builder and a notebook's runtime cannot disagree on them.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re

__all__ = [
    "BUNDLE_ID",
    "CRATE",
    "FILES",
    "LAZY",
    "MANIFEST",
    "MEDIA_TYPES",
    "METADATA_KEY",
    "REMOTE_FILE",
    "RETURN_MANIFEST",
    "RUN_FIELDS",
    "SIGNED",
    "SIGNED_KEYS",
    "media_type",
    "path_problem",
    "return_id",
]

# Members at a bundle's (or return's) root.
MANIFEST = "nbpack.json"
RETURN_MANIFEST = "nbpack-return.json"
CRATE = "ro-crate-metadata.json"
REMOTE_FILE = "nbpack.remote.json"

# Keys of the remote document (``nbpack.remote.json`` in a thin git tree, ``metadata["nbpack"][METADATA_KEY]`` in a
# lone notebook): the files prefix ``{base}/files/{git_token}/{hid}/`` (ends in ``/``), and the member paths the tree
# leaves out.
FILES = "files"
LAZY = "lazy"
METADATA_KEY = "remote"
# ... and its bundle's id in metadata["nbpack"][BUNDLE_ID], by which the runtime finds the file under any name.
BUNDLE_ID = "bundle_id"

# A signed read (docs/design.md "Signed range reads"): ``GET <files URL of a member>?signed=1`` answers a JSON object
# with these keys instead of the member's bytes: a short-lived presigned GET URL of the one stored object holding the
# member's data (``url``), where the data start in it (``offset``) and how long they are (``length``), the object's
# size (``object_bytes``: a Range answer's Content-Range total) and the URL's lifetime in seconds (``expires_in``).
SIGNED = "signed"
SIGNED_KEYS = ("url", "offset", "length", "object_bytes", "expires_in")

# What a return id covers besides its files (docs/design.md "Return id").
RUN_FIELDS = ("status", "error", "started", "ended", "notebook", "values", "provenance")


def return_id(bundle_id: str, entries: list[tuple[str, str]], run: dict) -> str:
    """``r-`` + 24 hex of sha256 over the bundle id, the sorted (path, sha256) entries and the canonical JSON of
    ``run``'s RUN_FIELDS: two runs differing in any of them differ. The runtime names its return with it; the service
    checks a received return with it."""
    h = hashlib.sha256(bundle_id.encode())
    for path, digest in sorted(entries):
        h.update(f"\n{path}\0{digest}".encode())
    fields = {k: run.get(k) for k in RUN_FIELDS}
    h.update(b"\n" + json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
    return "r-" + h.hexdigest()[:24]


# Types the standard library's table lacks or spells otherwise on some systems; the rest come from ``mimetypes``.
MEDIA_TYPES = {
    ".parquet": "application/vnd.apache.parquet",
    ".ipynb": "application/x-ipynb+json",
    ".py": "text/x-python",
    ".json": "application/json",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".yml": "application/yaml",
    ".yaml": "application/yaml",
    ".csv": "text/csv",
    ".png": "image/png",
    ".fits": "application/fits",
    ".fit": "application/fits",
    ".fz": "application/fits",
    ".h5": "application/x-hdf5",
    ".hdf5": "application/x-hdf5",
    ".vot": "application/x-votable+xml",
    ".tar": "application/x-tar",
    # A CASA measurement set is a folder of tables (mimetypes would say troff's application/x-troff-ms).
    ".ms": "inode/directory",
}


def media_type(name: str) -> str | None:
    """The media type of a file name by its suffix (case-insensitive), else None."""
    lower = name.lower()
    suffix = lower[lower.rfind(".") :] if "." in lower.rsplit("/", 1)[-1] else ""
    return MEDIA_TYPES.get(suffix) or mimetypes.guess_type(lower)[0]


_DRIVE = re.compile(r"^[A-Za-z]:")


def path_problem(path: str) -> str | None:
    """Why ``path`` is not a safe relative member path, else None. Safe: '/'-separated segments, none empty, '.' or
    '..'; no leading '/', drive letter, backslash or NUL. ``a/../b`` is refused, not normalised: a path names one
    member as written."""
    if not isinstance(path, str) or not path:
        return "is empty"
    if "\x00" in path or "\\" in path:
        return "contains a backslash or NUL"
    if path.startswith("/") or _DRIVE.match(path):
        return "is an absolute path"
    if any(seg in ("", ".", "..") for seg in path.split("/")):
        return "has an empty, '.' or '..' segment"
    return None
