"""The README's first command where numpy is not installed (`pip install .` brings pyarrow without it).

`.ci/run` runs the real thing in a fresh venv made with `pip install .`; these tests keep the same promise inside the
test run: the `nbpack` process (builder, CLI, service) with numpy made unimportable runs `nbpack demo` and starts
`nbpack serve`, whose demo landing page answers 200. The kernel keeps the venv as it is (pyarrow only needs numpy for
conversions the runtime does not make)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nbpack.bundle.catalog import write_catalog
from tests.fixtures.hub import free_port
from tests.helpers import REPO

# As on a machine where pip never installed numpy: `import numpy` raises ImportError in this process.
NO_NUMPY_CLI = [
    sys.executable,
    "-c",
    "import sys; sys.modules['numpy'] = None; from nbpack.cli.commands import main; main()",
]
NUMERIC = [
    pa.int8(),
    pa.int16(),
    pa.int32(),
    pa.int64(),
    pa.uint8(),
    pa.uint16(),
    pa.uint32(),
    pa.uint64(),
    pa.float16(),
    pa.float32(),
    pa.float64(),
]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}


def test_demo_runs_without_numpy(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    proc = subprocess.run(
        [*NO_NUMPY_CLI, "demo", "--dir", "demo"],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(status completed)" in proc.stdout, proc.stdout
    assert (tmp_path / "demo" / "demo-return.zip").is_file()


def test_serve_starts_without_numpy_and_its_demo_landing_page_renders(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*NO_NUMPY_CLI, "serve", "--port", str(port)],
            cwd=tmp_path,
            env=_env(tmp_path),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "no /healthz 200 within 120 s:\n" + log.read_text(errors="replace")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        link = re.search(r"demo bundle \S+: (http://\S+)", log.read_text(errors="replace"))
        assert link, log.read_text(errors="replace")
        with urllib.request.urlopen(link.group(1), timeout=30) as resp:
            assert resp.status == 200
            assert "Gaia DR3 cone" in resp.read().decode()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert "Traceback" not in log.read_text(errors="replace")


@pytest.mark.parametrize("arrow_type", NUMERIC, ids=str)
def test_ecsv_header_types_are_the_ones_astropy_reads_back(arrow_type: pa.DataType, tmp_path: Path) -> None:
    # The header is written without numpy; astropy (which has numpy) must read back exactly the Arrow type.
    # (No nulls here: how astropy reads nulls is test_catalog's business.)
    from astropy.table import Table

    path = tmp_path / "t.parquet"
    write_catalog(pa.table({"x": pa.array([1, 2, 3], arrow_type)}), path, name="t")
    schema = pq.read_schema(path)
    stored = schema.field("x").type.to_pandas_dtype().__name__  # numpy's name for the type as stored
    header = schema.metadata[b"table_meta_yaml"].decode()
    assert f'"datatype": "{stored}"' in header, header
    assert Table.read(path, format="parquet")["x"].dtype.name == stored
