"""Smoke test of the benchmark entry point: each benchmark runs end to end and reports its ratios."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args, "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    "name, size, baseline, nbpack",
    [
        ("build", "1000", "pyarrow_zip", "nbpack_table"),
        ("load", "1000", "pyarrow_read", "nbpack_runtime"),
        ("clone", "1MB", "backend_shallow", "endpoint_shallow"),
        ("download", "1MB", "boto3_get_object", "service_get"),
        ("ingest", "1MB", "boto3_vs_runtime_x20", "runtime_upload_x20"),
        ("lazy", "16MiB", "boto3_get_read", "lazy_first"),
        ("lazy", "16MiB", "pyarrow_s3_2_of_22", "lazy_2_of_22"),
    ],
)
def test_bench_prints_a_ratio(name, size, baseline, nbpack):
    proc = run_bench(name, "--size", size, "--repeats", "1")
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if f" {baseline} " in ln)
    # The ratio column: a positive number followed by the nbpack variant it compares with, then the target.
    assert re.search(rf"\s\d+\.\d\d\s+{nbpack}\s+<=", line), line
    assert re.search(r"\s(yes|NO)(\s|$)", line), line


@pytest.mark.skipif(
    not os.environ.get("NBPACK_BENCH_HUB"),
    reason="starts JupyterHub + Chromium (~75 s on 2 shared cores): set NBPACK_BENCH_HUB=1",
)
def test_bench_launch_prints_a_ratio():
    proc = run_bench("launch", "--size", "1", "--repeats", "1")
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if " open_pulled " in ln)
    assert re.search(r"\s\d+\.\d\d\s+click_to_notebook\s", line), line


def test_every_benchmark_is_reachable():
    from bench import benchmarks, runners

    assert {*benchmarks(), *runners()} == {
        "build",
        "load",
        "clone",
        "download",
        "ingest",
        "launch",
        "open_size",
        "lazy",
    }


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
