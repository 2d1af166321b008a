"""Zip entries written the same way every time (fixed time and mode), so the same return gives the same bytes."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from .base import CHUNK, ZIP_TIME


def zip_entry(zf: zipfile.ZipFile, arcname: str, data: bytes | Path) -> None:
    info = zipfile.ZipInfo(arcname, date_time=ZIP_TIME)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    if isinstance(data, Path):
        with open(data, "rb") as src, zf.open(info, "w") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
    else:
        zf.writestr(info, data)
