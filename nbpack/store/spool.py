"""Upload spools: request bodies written to local disk (never memory) before they are checked and stored.

The folder is shared by every worker of one replica, so a sweep removes only spools old enough to belong to a
process that was killed mid-upload.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import IO

from nbpack.errors import TooLarge

__all__ = ["receive", "sweep_old"]


def receive(stream: IO[bytes], limit: int, folder: Path) -> Path:
    """Spool ``stream`` to a temp file in ``folder``, refusing more than ``limit`` bytes (nothing kept then)."""
    fd, name = tempfile.mkstemp(prefix="upload-", suffix=".zip", dir=folder)
    total = 0
    try:
        with open(fd, "wb") as out:
            while chunk := stream.read(1 << 20):
                total += len(chunk)
                if total > limit:
                    raise TooLarge(f"upload is larger than the limit of {limit} bytes")
                out.write(chunk)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def sweep_old(folder: Path, max_age: float = 86400) -> None:
    """Remove spools a killed process left behind; only old ones, as other workers share the folder."""
    cutoff = time.time() - max_age
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        except OSError:
            pass
