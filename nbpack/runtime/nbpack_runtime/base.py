"""Names, limits and clocks every part of the runtime shares."""

from __future__ import annotations

import datetime as _dt
import os
import re

__version__ = "1.0.0"


MANIFEST = "nbpack.json"
RETURN_MANIFEST = "nbpack-return.json"
CRATE = "ro-crate-metadata.json"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
CHUNK = 1 << 20
RETRIES = 4
TIMEOUT = 60
SCHEMES = ("https", "http", "davs", "s3", "root", "file")
_DID = re.compile(r"^[A-Za-z0-9_.-]+:[^/].*$")


def _now() -> str:
    # timezone.utc, not datetime.UTC: hubs may run Python < 3.11
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")  # noqa: UP017


def _retry_delay(attempt: int) -> float:
    # Tests shrink the base delay through the environment; hubs keep the default.
    base = float(os.environ.get("NBPACK_RETRY_DELAY", "0.5"))
    return min(base * (2**attempt), 10.0)
