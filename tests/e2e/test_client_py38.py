"""nbpack-client on the oldest Python it promises (3.8, pyenv's): installed alone from clients/python into a fresh
venv with pip, it creates a bundle on a real service, lists it and pulls its zip; a refused create is a ServiceError."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.fixtures.service import service_env

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import json, sys
from nbpack_client import Client, ServiceError, pull
nb = Client(sys.argv[1], sys.argv[2])
made = nb.create({"title": "from 3.8", "catalogs": [{"name": "t", "rows": [{"id": 9007199254740993, "x": 1.5}]}],
                  "owner": "astro"})
listed = nb.list(owner="astro")["bundles"]
path = pull(made["links"]["landing"], sys.argv[3])
try:
    nb.create({"title": "bad", "payload": {"url": "file:///etc"}})
    refused = None
except ServiceError as err:
    refused = [err.http_status, err.code]
print(json.dumps({"id": made["id"], "listed": [b["id"] for b in listed], "zip": str(path), "refused": refused,
                  "python": sys.version_info[:2]}))
"""


def _python38() -> str:
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8.*/bin/python3")))
    if not found:
        pytest.fail("no Python 3.8 (pyenv install 3.8): nbpack-client promises it")
    return found[-1]


def test_the_client_distribution_runs_on_python_38(start_service, tmp_path: Path) -> None:  # noqa: ANN001
    svc = start_service(service_env(str(tmp_path / "store"), "k38"))
    venv = tmp_path / "venv38"
    subprocess.run([_python38(), "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(REPO / "clients" / "python")],
        check=True,
        timeout=600,
    )
    # only the standard library: nothing but the client (and the venv's own pip/setuptools) is installed
    pip_list = [str(py), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"]
    # From an empty folder: `python -m` puts the working folder on sys.path, and a checkout's nbpack.egg-info (left by
    # `pip install -e .`) would be listed as installed.
    alone = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    listed = subprocess.run(pip_list, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=alone)
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert names - {"pip", "setuptools"} == {"nbpack-client"}
    done = subprocess.run(
        [str(py), "-c", SCRIPT, svc.url, "k38", str(tmp_path / "b.zip")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["python"] == [3, 8] and out["listed"] == [out["id"]]
    assert out["refused"] == [400, "invalid_input"]
    with zipfile.ZipFile(out["zip"]) as zf:
        assert "catalogs/t.parquet" in zf.namelist()
