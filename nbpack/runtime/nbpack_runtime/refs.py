"""File references of the manifest's ``files[]`` and where the download cache keeps them."""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .base import DID, SCHEMES
from .checksums import checked_checksums


@dataclass
class FileRef:
    """One entry of the manifest's ``files[]``: a remote file fetched on demand."""

    name: str
    uri: str
    size: int | None = None
    checksums: dict[str, str] = field(default_factory=dict)
    site: str | None = None
    media_type: str | None = None

    @classmethod
    def from_manifest(cls, entry: dict) -> FileRef:
        """Build from a manifest ``files[]`` entry."""
        return cls(
            entry["name"],
            entry["uri"],
            entry.get("size"),
            dict(entry.get("checksums") or {}),
            entry.get("site"),
            entry.get("media_type"),
        )

    @property
    def is_did(self) -> bool:
        """True when the URI is a Rucio DID ``scope:name``."""
        return urllib.parse.urlsplit(self.uri).scheme not in SCHEMES and bool(DID.match(self.uri))


def cache_dir() -> Path:
    """The shared download cache (``NBPACK_CACHE``, default ``~/.cache/nbpack``)."""
    return Path(os.environ.get("NBPACK_CACHE") or Path.home() / ".cache" / "nbpack")


def cache_path(ref: FileRef) -> Path:
    # Keyed by content checksum so the same file in two bundles is fetched once.
    checksums = checked_checksums(ref.name, ref.checksums)
    for alg in ("sha256", "md5", "adler32"):
        if alg in checksums:
            key = Path(alg) / checksums[alg]
            break
    else:
        key = Path("uri") / hashlib.sha256(ref.uri.encode()).hexdigest()[:32]
    base = urllib.parse.urlsplit(ref.uri).path.rsplit("/", 1)[-1] if not ref.is_did else ref.uri.split(":", 1)[1]
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", base.rsplit("/", 1)[-1]) or ref.name
    return cache_dir() / key / base
