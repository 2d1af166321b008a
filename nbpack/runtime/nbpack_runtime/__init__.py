"""nbpack runtime: shipped inside every bundle, next to the notebook and ``nbpack.json``.

The bootstrap cell calls ``start()``; the results cell calls ``finish()``. This package runs in hubs where
nbpack itself is not installed, so it uses only the standard library and pyarrow; pandas, astropy, IPython,
boto3, rucio and XRootD are imported lazily, with a clear message when one is needed but missing.
Each module holds one job (see docs/design.md); this file only names the public API.
"""

from __future__ import annotations

from .alone import start_alone
from .astropy_table import to_astropy
from .base import __version__
from .bundle import Bundle
from .errors import ChecksumMismatch, FetchError, RuntimeProblem, UploadError
from .outputs import record_error, save_output, save_value
from .refs import FileRef, cache_dir
from .returns import finish
from .sending import upload
from .session import check_requirements, start
from .vocab import return_id

__all__ = [
    "Bundle",
    "FileRef",
    "RuntimeProblem",
    "ChecksumMismatch",
    "FetchError",
    "UploadError",
    "start",
    "start_alone",
    "finish",
    "upload",
    "save_output",
    "save_value",
    "check_requirements",
    "record_error",
    "return_id",
    "to_astropy",
    "cache_dir",
    "__version__",
]
