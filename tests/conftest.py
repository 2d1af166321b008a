"""Shared test set-up: Jupyter and kernel state kept inside a per-session scratch folder."""

from __future__ import annotations

import os
import tempfile

pytest_plugins = [
    "tests.fixtures.seaweed",
    "tests.fixtures.browser",
    "tests.fixtures.hub",
    "tests.fixtures.service",
    "tests.fixtures.rucio",
]

_scratch = tempfile.mkdtemp(prefix="nbpack-tests-")
for _var, _sub in [
    ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"),
    ("JUPYTER_DATA_DIR", "jupyter-data"),
    ("JUPYTER_CONFIG_DIR", "jupyter-config"),
    ("IPYTHONDIR", "ipython"),
    ("NBPACK_CACHE", "nbpack-cache"),
]:
    os.environ.setdefault(_var, os.path.join(_scratch, _sub))
