"""Return bundles: what a notebook sends back. Written by the runtime, read and checked here."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from nbpack.bundle import archive
from nbpack.bundle.manifest import ManifestZip, contents_problems, open_manifest_zip
from nbpack.bundle.notebook import read_notebook
from nbpack.errors import NbpackError
from nbpack.runtime.nbpack_runtime.vocab import CRATE, RETURN_MANIFEST, return_id

__all__ = [
    "CRATE",
    "RETURN_MANIFEST",
    "ReturnFile",
    "check_return",
    "external_paths",
    "notebook_missing",
    "open_return",
    "return_id_for",
    "return_warnings",
    "scraps",
]


def return_id_for(manifest: dict[str, Any]) -> str:
    """The return id over everything the return carries: the runtime's rule over the manifest's files (but the
    manifest and crate, which hold the id) and its RUN_FIELDS."""
    skip = (RETURN_MANIFEST, CRATE)
    entries = [(e["path"], e["sha256"]) for e in manifest["contents"] if e["path"] not in skip]
    return return_id(manifest["bundle_id"], entries, manifest)


# The opened-zip type is shared with bundles; the name says which kind a function wants.
ReturnFile = ManifestZip


def open_return(source: str | Path | IO[bytes], limits: archive.Limits = archive.DEFAULT_LIMITS) -> ReturnFile:
    """Open a return bundle after the archive safety checks; raises if its manifest is not valid."""
    return open_manifest_zip(source, limits, RETURN_MANIFEST, "return", "not a return bundle")


def external_paths(manifest: dict[str, Any]) -> set[str]:
    """Output paths the manifest marks as stored outside the archive (``"external": "blob"``)."""
    return {o["path"] for o in manifest["outputs"] if o.get("external") == "blob"}


def check_return(rf: ReturnFile, *, external_ok: bool = False, known: dict[str, str] | None = None) -> list[str]:
    """Every problem in an opened return bundle: contents vs archive, sha256s, id, outputs, notebook.

    Members marked external may be absent only with ``external_ok`` (the service, which checks the blobs itself).
    ``known``: sha256s of members already hashed from the very bytes the archive holds (``zipstream``).
    """
    m = rf.manifest
    listed = {e["path"]: e for e in m["contents"]}
    absent = {
        path: ""
        if external_ok
        else f"{path}: stored externally (the service's blob store, sha256"
        f" {listed[path]['sha256']}), not in this archive; download it from the service"
        for path in external_paths(m)
        if path in listed
    }
    problems = contents_problems(rf, {RETURN_MANIFEST, CRATE}, absent=absent, known=known)
    present = set(rf.zf.namelist())
    for out in m["outputs"]:
        entry = listed.get(out["path"])
        if entry is None or entry["sha256"] != out["sha256"]:
            problems.append(f"output {out['path']}: not in the contents with that sha256")
    if return_id_for(m) != m["id"]:
        problems.append(f"id {m['id']} does not match the content ({return_id_for(m)})")
    # A return without its notebook (the file renamed or gone) is kept: its outputs and values are the run's results.
    if m["notebook"] in present:
        try:
            read_notebook(rf.read(m["notebook"]), f"notebook {m['notebook']}")
        except NbpackError as exc:
            problems.append(str(exc))
    return problems


def notebook_missing(manifest: dict[str, Any]) -> bool:
    """True when the return carries no notebook file (the runtime found none to send): not a fault, a warning."""
    return manifest["notebook"] not in {e["path"] for e in manifest["contents"]}


def return_warnings(manifest: dict[str, Any]) -> list[str]:
    """What a return lacks that does not stop it being stored (one line each)."""
    if notebook_missing(manifest):
        return [
            f"the notebook {manifest['notebook']} was not sent with this return (not found where the run was);"
            " its outputs and values are kept"
        ]
    return []


def scraps(notebook: dict[str, Any]) -> dict[str, Any]:
    """Named values glued in a notebook's outputs (scrapbook's display format), name → data."""
    found: dict[str, Any] = {}
    for cell in notebook.get("cells", []):
        for out in cell.get("outputs", []):
            meta = (out.get("metadata") or {}).get("scrapbook") or {}
            for mime, payload in (out.get("data") or {}).items():
                name = payload.get("name", meta.get("name")) if isinstance(payload, dict) else None
                if mime.startswith("application/scrapbook.scrap.") and isinstance(name, str) and meta.get("data"):
                    found[name] = payload.get("data")
    return found
