"""save_value in process: a table Parquet refuses is a one-line error naming the value. scrapbook reading saved values
through a kernel is in tests/integration/test_scrapbook.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import load_runtime_package, unload_runtime


def test_a_table_parquet_refuses_is_a_one_line_error(tmp_path: Path) -> None:
    """A DataFrame Parquet cannot hold (a column mixing ints and text) fails in save_value, naming the value."""
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "nbpack.json").write_text(json.dumps({"id": "b-" + "0" * 24, "title": "t", "payload": {}}))
    rt = load_runtime_package("rt_copy")  # a fresh copy: its own run state
    try:
        rt.start(str(folder))
        with pytest.raises(rt.RuntimeProblem, match=r"save_value\('bad'\): this table cannot be saved as Parquet"):
            rt.save_value("bad", pd.DataFrame({"a": [1, "x"]}))
        assert "bad" not in rt.session.STATE.values
        rt.save_value("ok", pd.DataFrame({"a": [1, 2]}))
        assert rt.session.STATE.values["ok"]["encoder"] == "pandas"
        # Values travel in the return manifest (readers cap it at 16 MiB): a big one is refused, naming save_output.
        big = pd.DataFrame({"x": [os.urandom(20).hex() for _ in range(60_000)]})  # ~2.4 MB that does not compress
        with pytest.raises(rt.RuntimeProblem, match=r"save_value\('big'\): \d+ bytes encoded is too big.*save_output"):
            rt.save_value("big", big)
        assert set(rt.session.STATE.values) == {"ok"}
    finally:
        unload_runtime("rt_copy")
