"""Object storage for bundles: one small interface (nbpack/store/api.py), a local-folder backend
(nbpack/store/local.py), an S3 backend (nbpack/store/s3.py) and an in-memory one for tests (nbpack/store/memory.py);
``open_storage`` picks one from a URL.

Callers import all of these from here.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from nbpack.config import s3_endpoint_from_env, s3_region_from_env
from nbpack.errors import InvalidInput
from nbpack.store.api import ObjectInfo, Storage, check_key
from nbpack.store.local import LocalStorage
from nbpack.store.memory import MemoryStorage, open_memory
from nbpack.store.s3 import S3Storage, put_headers

__all__ = [
    "ObjectInfo",
    "Storage",
    "LocalStorage",
    "MemoryStorage",
    "S3Storage",
    "open_storage",
    "check_key",
    "put_headers",
]


def open_storage(url: str, *, endpoint_url: str | None = None, region: str | None = None) -> Storage:
    """Open storage from a folder path, a ``file://`` URL, ``s3://bucket/prefix`` or ``memory://NAME``."""
    if not url:
        raise InvalidInput("storage URL is empty")
    if url.startswith("s3://"):
        parsed = urlparse(url)
        if parsed.username or parsed.password or parsed.query:
            raise InvalidInput("S3 storage URL must be s3://bucket/prefix, without credentials or query")
        # Callers without a Config (tests, bench, the CLI's maintenance commands) get what the environment names.
        endpoint = endpoint_url or s3_endpoint_from_env()
        return S3Storage(parsed.netloc, parsed.path, endpoint_url=endpoint, region=region or s3_region_from_env())
    if url.startswith("file://"):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise InvalidInput(f"file storage URL {url!r} names a remote host")
        return LocalStorage(Path(unquote(parsed.path)))
    if url.startswith("memory://"):
        return open_memory(url)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", url):
        raise InvalidInput(
            f"unsupported storage URL {url.split('://', 1)[0]}:// (use a path, file://, s3:// or memory://)"
        )
    return LocalStorage(Path(url))
