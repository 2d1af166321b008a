"""Values saved by the results cell read back with the real scrapbook (PyPI, 0.5.0): each with its type, no warning,
and the same record scrapbook's own ``glue`` writes for the same value in the same kernel."""

from __future__ import annotations

import gc
import json
import logging
import warnings
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from nbpack.bundle.build import BuildSpec, build_bundle
from nbpack.cli import main
from tests.helpers import template_notebook

scrapbook = pytest.importorskip("scrapbook")

# Awkward data: int64 above 2^53, NaN beside null, tz-aware times, unicode with commas. Built the same way in the
# kernel and here, so the test compares the DataFrame scrapbook gives back with one it did not go through.
FRAME = """\
import pandas as pd, pyarrow as pa
frame = pd.DataFrame({
    "id": pd.array([2**53 + 1, -(2**62), 7], dtype="int64"),
    "flux": pd.array([1.5, float("nan"), None], dtype="float64"),
    "mag": pd.array([1.25, None, 3.0], dtype="Float64"),
    "t": pd.to_datetime(["2024-01-01T00:00:00.123456", "2024-06-30T23:59:59.000001",
                         "2025-02-28T12:00:00.5"]).tz_localize("Europe/Amsterdam"),
    "name": ["Błażej, Ørsted", "α Cen, A", None],
})"""

CELL = (
    FRAME
    + """
import nbpack_runtime, scrapbook as sb
nbpack_runtime.save_value("df", frame)
sb.glue("sb_df", frame)
nbpack_runtime.save_value("table", pa.table({"id": pa.array([2**63 - 1, None], pa.int64()), "s": ["a,b", "ü"]}))
nbpack_runtime.save_value("text", "Ørsted, α Cen")
sb.glue("sb_text", "Ørsted, α Cen")
nbpack_runtime.save_value("big", 2**53 + 1)
sb.glue("sb_big", 2**53 + 1)
nbpack_runtime.save_value("record", {"ra": 10.5, "ids": [2**62, -1], "ok": True, "name": "a, b"})
sb.glue("sb_record", {"ra": 10.5, "ids": [2**62, -1], "ok": True, "name": "a, b"})
nbpack_runtime.save_value("flag", False)
nbpack_runtime.save_value("nan", float("nan"))
nbpack_runtime.save_value("nothing", None)
"""
)


def _expected_frame() -> pd.DataFrame:
    scope: dict = {}
    exec(FRAME, scope)  # noqa: S102 - the test's own constant, the same code the kernel ran
    return scope["frame"]


def test_scrapbook_reads_every_saved_value_with_its_type_and_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle.zip"
    build_bundle(BuildSpec(title="Scraps", notebook=template_notebook(CELL), notebook_name="scraps.ipynb"), bundle)
    ret = tmp_path / "return.zip"
    main(["run", str(bundle), "-o", str(ret), "--timeout", "120"])
    assert "(status completed)" in capsys.readouterr().out
    with zipfile.ZipFile(ret) as zf:
        nb_path = tmp_path / "scraps.ipynb"
        nb_path.write_bytes(zf.read("scraps.ipynb"))
        manifest = json.loads(zf.read("nbpack-return.json"))

    # Objects earlier tests left for the collector (a kernel client's zmq context) must not log inside the window.
    gc.collect()
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scraps = scrapbook.read_notebook(str(nb_path)).scraps
    # scrapbook reports a payload version it does not know through logging, not warnings: check both.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []

    # Same record as scrapbook's own glue for the same value: encoder and data.
    for name in ("df", "text", "big", "record"):
        assert scraps[name].encoder == scraps[f"sb_{name}"].encoder, name
    pd.testing.assert_frame_equal(scraps["df"].data, scraps["sb_df"].data)
    expected = _expected_frame()
    pd.testing.assert_frame_equal(scraps["df"].data, expected)
    df = scraps["df"].data
    assert df["id"].tolist() == [2**53 + 1, -(2**62), 7] and str(df["id"].dtype) == "int64"
    assert pd.isna(df["mag"][1]) and df["mag"].dtype == expected["mag"].dtype
    assert str(df["t"].dt.tz) == "Europe/Amsterdam" and df["t"][0].microsecond == 123456
    assert df["name"].tolist()[:2] == ["Błażej, Ørsted", "α Cen, A"]

    # An Arrow table comes back as a DataFrame, its int64 extremes and null intact.
    table = scraps["table"].data
    assert isinstance(table, pd.DataFrame) and table["s"].tolist() == ["a,b", "ü"]
    assert table["id"][0] == 2**63 - 1 and pd.isna(table["id"][1])
    assert scraps["text"].data == "Ørsted, α Cen" and scraps["text"].encoder == "text"
    assert scraps["big"].data == 2**53 + 1 and isinstance(scraps["big"].data, int)
    assert scraps["record"].data == {"ra": 10.5, "ids": [2**62, -1], "ok": True, "name": "a, b"}
    assert scraps["flag"].data is False
    # NaN is not JSON: kept as its text, as before; None is in the manifest only (scrapbook's schema has no null).
    assert scraps["nan"].data == "nan" and scraps["nan"].encoder == "text"
    assert "nothing" not in scraps

    values = {v["name"]: v for v in manifest["values"]}
    assert values["nothing"] == {"name": "nothing", "encoder": "json", "data": None}
    assert values["df"]["encoder"] == "pandas"
    assert values["big"]["data"] == 2**53 + 1
