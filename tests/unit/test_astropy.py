"""astropy's own masked Parquet layout in process: the measurement behind nbpack not writing it. Reading bundles with
astropy through the runtime in a fresh interpreter is in tests/integration/test_astropy.py."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from astropy.table import MaskedColumn, Table

BIG = 2**53 + 1  # the first int64 a float64 cannot hold


def test_astropy_masked_layout_would_change_what_pyarrow_and_pandas_see(tmp_path: Path) -> None:
    """The measurement behind not writing astropy's masked layout: it is what keeps nulls for astropy, and it
    shows pyarrow and pandas extra ``.mask`` columns and fill values where nulls were."""
    import pandas as pd

    awkward = Table()
    awkward["source_id"] = MaskedColumn(np.array([BIG, 0, 3], np.int64), mask=[False, True, False])
    awkward["ra"] = MaskedColumn([10.5, math.nan, 0.0], mask=[False, False, True], unit="deg")
    awkward.write(tmp_path / "astropy.parquet", format="parquet")
    arrow = pq.read_table(tmp_path / "astropy.parquet")
    assert arrow.column_names == ["source_id", "source_id.mask", "ra", "ra.mask"]
    assert arrow.column("source_id").null_count == 0 and arrow.column("source_id")[1].as_py() == 0
    assert list(pd.read_parquet(tmp_path / "astropy.parquet").columns) == arrow.column_names
    back = Table.read(tmp_path / "astropy.parquet", format="parquet")
    assert back["source_id"].dtype == np.int64 and int(back["source_id"][0]) == BIG
    assert list(back["source_id"].mask) == [False, True, False]
