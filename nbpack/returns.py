"""Return bundles: what a notebook sends back. Written by the runtime, read and checked here."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from . import archive, schema
from .errors import InvalidBundle, InvalidInput, NbpackError
from .notebook import read_notebook

__all__ = ["RETURN_MANIFEST", "ReturnFile", "open_return", "check_return", "external_paths", "return_id_for",
           "scraps"]

RETURN_MANIFEST = "nbpack-return.json"
CRATE = "ro-crate-metadata.json"


def return_id_for(manifest: dict[str, Any]) -> str:
    """The content-derived return id, computed as the runtime computes it."""
    h = hashlib.sha256(manifest["bundle_id"].encode())
    skip = (RETURN_MANIFEST, CRATE)
    entries = sorted((e["path"], e["sha256"]) for e in manifest["contents"] if e["path"] not in skip)
    for path, digest in entries:
        h.update(f"\n{path}\0{digest}".encode())
    return "r-" + h.hexdigest()[:24]


@dataclass
class ReturnFile:
    """An opened return bundle zip with its schema-valid manifest."""

    zf: zipfile.ZipFile
    manifest: dict[str, Any]

    @property
    def id(self) -> str:
        return self.manifest["id"]

    def read(self, name: str, max_bytes: int = 64 << 20) -> bytes:
        """One member's bytes (small members only)."""
        return archive.read_member(self.zf, name, max_bytes)

    def close(self) -> None:
        self.zf.close()

    def __enter__(self) -> ReturnFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_return(source: str | Path | IO[bytes], limits: archive.Limits = archive.DEFAULT_LIMITS) -> ReturnFile:
    """Open a return bundle after the archive safety checks; raises if its manifest is not valid."""
    if isinstance(source, str | Path) and not Path(source).is_file():
        raise InvalidInput(f"{source}: no such file")
    zf = archive.open_zip(source, limits)
    try:
        if RETURN_MANIFEST not in zf.namelist():
            raise InvalidBundle(f"not a return bundle: no {RETURN_MANIFEST} at the archive root")
        try:
            doc = json.loads(archive.read_member(zf, RETURN_MANIFEST, 16 << 20))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise InvalidBundle(f"{RETURN_MANIFEST} is not valid JSON ({exc})") from None
        schema.validate(doc, "return")
        return ReturnFile(zf, doc)
    except BaseException:
        zf.close()
        raise


def external_paths(manifest: dict[str, Any]) -> set[str]:
    """Output paths the manifest marks as stored outside the archive (``"external": "blob"``)."""
    return {o["path"] for o in manifest["outputs"] if o.get("external") == "blob"}


def check_return(rf: ReturnFile, *, external_ok: bool = False) -> list[str]:
    """Every problem in an opened return bundle: contents vs archive, sha256s, id, outputs, notebook.

    Members marked external may be absent only with ``external_ok`` (the service, which checks the blobs itself).
    """
    m, problems = rf.manifest, []
    listed = {e["path"]: e for e in m["contents"]}
    present = {i.filename: i for i in archive.safe_members(rf.zf)}
    external = external_paths(m)
    for path in sorted(set(present) - set(listed) - {RETURN_MANIFEST, CRATE}):
        problems.append(f"{path}: in the archive but not in the manifest contents")
    for path, entry in sorted(listed.items()):
        info = present.get(path)
        if info is None and path in external:
            if not external_ok:
                problems.append(f"{path}: stored externally (the service's blob store, sha256 {entry['sha256']}),"
                                " not in this archive; download it from the service")
            continue
        if info is None:
            problems.append(f"{path}: listed in the manifest but missing from the archive")
            continue
        if info.file_size != entry["bytes"]:
            problems.append(f"{path}: {info.file_size} bytes, the manifest says {entry['bytes']}")
            continue
        if archive.member_sha256(rf.zf, info) != entry["sha256"]:
            problems.append(f"{path}: sha256 does not match the manifest")
    for out in m["outputs"]:
        entry = listed.get(out["path"])
        if entry is None or entry["sha256"] != out["sha256"]:
            problems.append(f"output {out['path']}: not in the contents with that sha256")
    if return_id_for(m) != m["id"]:
        problems.append(f"id {m['id']} does not match the content ({return_id_for(m)})")
    if m["notebook"] not in present:
        problems.append(f"notebook {m['notebook']} is missing")
    else:
        try:
            read_notebook(rf.read(m["notebook"]), f"notebook {m['notebook']}")
        except NbpackError as exc:
            problems.append(str(exc))
    return problems


def scraps(notebook: dict[str, Any]) -> dict[str, Any]:
    """Named values glued in a notebook's outputs (scrapbook's display format), name → data."""
    found: dict[str, Any] = {}
    for cell in notebook.get("cells", []):
        for out in cell.get("outputs", []):
            meta = (out.get("metadata") or {}).get("scrapbook") or {}
            for mime, payload in (out.get("data") or {}).items():
                if mime.startswith("application/scrapbook.scrap.") and isinstance(payload, dict) and meta.get("data"):
                    found[payload.get("name", meta.get("name"))] = payload.get("data")
    return found
