"""Smoke test of the benchmark entry point: each benchmark runs end to end and reports its ratios."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args, "--quiet"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("name, baseline", [("build", "pyarrow_zip"), ("load", "pyarrow_read")])
def test_bench_prints_a_ratio(name, baseline):
    proc = run_bench(name, "--size", "1000", "--repeats", "1")
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if f" {baseline} " in ln)
    # The ratio column: a positive number followed by the nbpack variant it compares with.
    assert re.search(r"\s\d+\.\d\d\s+nbpack_\w+\s+<=", line), line
    assert re.search(r"\s(yes|NO)(\s|$)", line), line


def test_bench_json_has_ratio_per_baseline(tmp_path):
    proc = run_bench("load", "--size", "1e3", "--repeats", "1", "--json", "--workdir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    rows = {r["variant"]: r for r in doc["rows"]}
    assert set(rows) == {"nbpack_runtime", "pyarrow_read", "votable_read"}
    assert rows["pyarrow_read"]["ratio"] > 0 and rows["pyarrow_read"]["compared"] == "nbpack_runtime"
    assert rows["nbpack_runtime"]["ratio"] is None and rows["nbpack_runtime"]["median_s"] > 0
    assert (tmp_path / "load-1e3" / "bundle" / "nbpack.json").is_file()


def test_bench_refuses_bad_size():
    proc = run_bench("build", "--size", "10 parsecs")
    assert proc.returncode == 2 and "size" in proc.stderr
