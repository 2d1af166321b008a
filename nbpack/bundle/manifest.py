"""A zip with a JSON manifest at its root (bundles and return bundles alike): open it, check its contents list.

The manifest's ``contents`` lists every other entry with its size and sha256; the checks here
compare that list with what the archive really holds. What each manifest means is in
``bundle.py`` and ``returns.py``; this module only knows the shared shape.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from nbpack.bundle import archive, schema
from nbpack.errors import InvalidBundle, InvalidInput

__all__ = ["ManifestZip", "open_manifest_zip", "contents_problems"]


@dataclass
class ManifestZip:
    """An opened zip that passed the archive safety checks, with its schema-valid manifest."""

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

    def __enter__(self) -> ManifestZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_manifest_zip(
    source: str | Path | IO[bytes], limits: archive.Limits, name: str, kind: str, missing: str
) -> ManifestZip:
    """Open a zip (safety-checked) whose root ``name`` is a valid ``kind`` manifest; ``missing`` says what it isn't."""
    if isinstance(source, str | Path) and not Path(source).is_file():
        raise InvalidInput(f"{source}: no such file")
    zf = archive.open_zip(source, limits)
    try:
        if name not in zf.namelist():
            raise InvalidBundle(f"{missing}: no {name} at the archive root")
        try:
            doc = json.loads(archive.read_member(zf, name, 16 << 20))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise InvalidBundle(f"{name} is not valid JSON ({exc})") from None
        schema.validate(doc, kind)
        return ManifestZip(zf, doc)
    except BaseException:
        zf.close()
        raise


def contents_problems(
    opened: ManifestZip,
    unlisted_ok: Collection[str],
    *,
    hash_members: bool = True,
    absent: dict[str, str] | None = None,
    known: dict[str, str] | None = None,
) -> list[str]:
    """Where the archive and the manifest's ``contents`` disagree: extra, missing, resized or changed members.

    ``unlisted_ok`` names entries that may be in the archive without a contents line (the manifest itself);
    ``absent`` maps listed paths that may be missing to the problem to report instead (or "" for none); ``known``
    gives members' sha256s already computed from these very bytes (not read again).
    """
    known = known or {}
    problems = []
    listed = {e["path"]: e for e in opened.manifest["contents"]}
    present = {i.filename: i for i in archive.safe_members(opened.zf)}
    for path in sorted(set(present) - set(listed) - set(unlisted_ok)):
        problems.append(f"{path}: in the archive but not in the manifest contents")
    for path, entry in sorted(listed.items()):
        info = present.get(path)
        if info is None:
            note = (absent or {}).get(path, f"{path}: listed in the manifest but missing from the archive")
            if note:
                problems.append(note)
        elif info.file_size != entry["bytes"]:
            problems.append(f"{path}: {info.file_size} bytes, the manifest says {entry['bytes']}")
        elif hash_members and (known.get(path) or archive.member_sha256(opened.zf, info)) != entry["sha256"]:
            problems.append(f"{path}: sha256 does not match the manifest")
    return problems
