"""A notebook opened alone (``links.notebook``): its bundle is the service's, read through the files URL.

The bootstrap cell has already fetched the manifest and this runtime (checked against its pin) with the standard
library; here the run starts as ``start()`` would, with every catalog remote. The working folder (the notebook's)
stays the bundle root: outputs/ and the return zip land beside the notebook, as in a bundle folder.
"""

from __future__ import annotations

from pathlib import Path

from .bundle import Bundle
from .errors import RuntimeProblem
from .remote import check_remote
from .session import STATE, begin, greet
from .vocab import FILES, LAZY

__all__ = ["start_alone"]


def start_alone(files: str, manifest: dict, root: str | Path | None = None) -> Bundle:
    """Open the bundle of a lone notebook: ``manifest`` as fetched from the service, members under ``files``.

    ``files`` is the files prefix the service wrote into the notebook (it ends in ``/``); ``root`` (default: the
    working folder) is where outputs and the return zip are written. Safe to call twice.
    """
    if not isinstance(manifest, dict) or not isinstance(manifest.get("catalogs", []), list):
        raise RuntimeProblem("the manifest fetched from the nbpack service is not a bundle manifest")
    lazy = sorted(c["path"] for c in manifest.get("catalogs", []))
    remote = check_remote({FILES: files, LAZY: lazy}, "the notebook's NBPACK_FILES")
    where = Path(root or Path.cwd()).resolve()
    current = STATE.bundle
    if current is None or current.root != where or current.manifest != manifest:
        begin(Bundle(where, manifest, remote=remote))
    return greet()
