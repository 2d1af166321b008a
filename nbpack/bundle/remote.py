"""Where a thin git tree finds the catalogs it leaves out: the ``nbpack.remote.json`` document, written here.

A clone (nbgitpuller, BinderHub) carries the notebook, the runtime, the manifest and small files; catalogs of
``min_bytes`` or more stay in the service and the runtime reads them by HTTP Range from ``files`` + their path.
The document's names are the runtime's (``nbpack_runtime/vocab.py``), which reads it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nbpack.runtime.nbpack_runtime.vocab import BUNDLE_ID, FILES, LAZY, METADATA_KEY, REMOTE_FILE

__all__ = ["BUNDLE_ID", "REMOTE_FILE", "FILES", "LAZY", "METADATA_KEY", "Remote"]


@dataclass(frozen=True)
class Remote:
    """What a handle's git tree leaves out and where those files are served (``files`` ends in ``/``)."""

    files: str
    min_bytes: int

    def lazy_paths(self, manifest: Mapping[str, Any], sizes: Mapping[str, int]) -> list[str]:
        """The manifest's catalog paths whose member (``sizes``: path → uncompressed bytes) is ``min_bytes`` or more."""
        if self.min_bytes <= 0:
            return []
        catalogs = manifest.get("catalogs")
        paths = {c.get("path") for c in catalogs if isinstance(c, dict)} if isinstance(catalogs, list) else set()
        return sorted(p for p in paths if isinstance(p, str) and sizes.get(p, -1) >= self.min_bytes)

    def document(self, lazy: list[str]) -> bytes:
        """The ``nbpack.remote.json`` bytes (sorted keys, so the same handle gives the same commit)."""
        return (json.dumps({FILES: self.files, LAZY: sorted(lazy)}, indent=2, sort_keys=True) + "\n").encode()
