"""astropy on nbpack's output, for real: the runtime's ``catalog(as_="astropy")`` in a fresh interpreter inside a
built bundle, astropy's own ``parquet.votable`` and ``parquet`` readers on bundle catalogs, and ``nbpack build``
given Parquet files written by astropy (both formats). See docs/astropy.md for what each reader keeps."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import os
import subprocess
import sys
import warnings
import zipfile
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy import units as u
from astropy.table import MaskedColumn, Table
from click.testing import CliRunner

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from nbpack.cli.commands import cli
from tests.helpers import esap_page, load_runtime_package, reference_table, template_notebook, unload_runtime
from tests.unit.test_astropy import BIG

AMS = ZoneInfo("Europe/Amsterdam")
SEEN = [
    dt.datetime(2024, 3, 31, 1, 59, 59, 123456, tzinfo=dt.UTC),
    None,
    dt.datetime(2024, 10, 27, 0, 30, tzinfo=dt.UTC),
    dt.datetime(1999, 12, 31, 23, 0, tzinfo=AMS),
]
AWKWARD_COLUMNS = {
    "source_id": {"ucd": "meta.id;meta.main", "description": "Gaia source id"},
    "ra": {"unit": "deg", "ucd": "pos.eq.ra;meta.main", "description": "Right ascension, ICRS"},
    "mag": {"unit": "mag", "ucd": "phot.mag;em.opt.G"},
    "rv": {"unit": "km / s", "ucd": "spect.dopplerVeloc"},
    "seen": {"description": "first seen (tz-aware)"},
}


def awkward_table() -> pa.Table:
    """int64 ids above 2^53, NaN beside null, nullable bool, nullable unicode strings with commas, tz-aware times."""
    return pa.table(
        {
            "source_id": pa.array([BIG, 2**62 + 3, None, -(2**60) - 1], pa.int64()),
            "ra": pa.array([10.5, math.nan, None, 359.999]),
            "mag": pa.array([None, 12.25, math.nan, 20.0], pa.float32()),
            "rv": pa.array([-12.5, 0.0, None, 310.25]),
            "flag": pa.array([True, None, False, True]),
            "name": pa.array(["é, x", None, "None", "Ωmega, ünïcode"]),
            "seen": pa.array(SEEN, pa.timestamp("us", tz="Europe/Amsterdam")),
        }
    )


def all_types_table() -> pa.Table:
    """Every column type a catalog can store, each with a null: parquet.votable must read all of them."""
    utc = dt.UTC
    return pa.table(
        {
            "u64": pa.array([1, 2**63 + 5, None], pa.uint64()),
            "i8": pa.array([1, None, -3], pa.int8()),
            "f32": pa.array([1.5, math.nan, None], pa.float32()),
            "flag_full": pa.array([True, False, True]),
            "all_null": pa.array([None, None, None], pa.string()),
            "raw": pa.array([b"\xff\x00", None, b""]),
            "ts_ns": pa.array([1, None, 3], pa.timestamp("ns", tz="UTC")),
            "ts_naive": pa.array([dt.datetime(2024, 1, 1), None, dt.datetime(2024, 1, 2)], pa.timestamp("s")),
            "ts_utc": pa.array(
                [dt.datetime(2024, 1, 1, tzinfo=utc), None, dt.datetime(2025, 1, 1, tzinfo=utc)],
                pa.timestamp("ms", tz="UTC"),
            ),
            "day": pa.array([dt.date(2024, 1, 1), None, dt.date(1970, 1, 1)], pa.date32()),
            "day64": pa.array([dt.date(2024, 1, 1), None, dt.date(1970, 1, 1)], pa.date64()),
            "wait": pa.array([dt.timedelta(seconds=1), None, dt.timedelta(days=1)], pa.duration("ms")),
            "clock": pa.array([dt.time(1, 2, 3), None, dt.time(23, 59)], pa.time64("us")),
            "money": pa.array([decimal.Decimal("1.25"), None, decimal.Decimal("-3.50")], pa.decimal128(10, 2)),
            "spectrum": pa.array([[1.0, 2.0], None, []], pa.list_(pa.float64())),
            "pair": pa.array([[1, 2], [3, 4], [5, 6]], pa.list_(pa.int32(), 2)),
            "pair_null": pa.array([[1, 2], None, [5, 6]], pa.list_(pa.int32(), 2)),
            "band": pa.array(["g", None, "r"]).dictionary_encode(),
        }
    )


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real bundle (built by nbpack, unzipped as a hub would) holding every kind of catalog."""
    tmp = tmp_path_factory.mktemp("astropy-bundle")
    sample = resources.files("nbpack.data")
    columns = json.loads(sample.joinpath("sample_sources.columns.json").read_text())
    (tmp / "page.json").write_text(json.dumps(esap_page()))
    with resources.as_file(sample.joinpath("sample_sources.csv")) as csv_path:
        spec = BuildSpec(
            title="astropy",
            catalogs=[
                CatalogInput("awkward", awkward_table(), columns=AWKWARD_COLUMNS),
                CatalogInput("types", all_types_table()),
                CatalogInput("reference", reference_table(), columns={"ra": {"unit": "deg"}}),
                CatalogInput("sample", csv_path, columns=columns),
                CatalogInput("esap", tmp / "page.json"),
            ],
            notebook=template_notebook("pass"),
        )
        build_bundle(spec, tmp / "b.zip")
    with zipfile.ZipFile(tmp / "b.zip") as zf:
        zf.extractall(tmp / "b")
    return tmp / "b"


def _catalog_paths(bundle: Path) -> dict[str, Path]:
    manifest = json.loads((bundle / "nbpack.json").read_text())
    return {c["name"]: bundle / c["path"] for c in manifest["catalogs"]}


def _run(bundle: Path, code: str) -> dict:
    """Run ``code`` with the bundle's own copy of the runtime in a fresh interpreter; it prints one JSON line."""
    script = bundle / "_astropy_driver.py"
    script.write_text("import json, math, sys\nimport nbpack_runtime as rt\n" + code)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBPACK_", "RUCIO_"))}
    env["NBPACK_CACHE"] = str(bundle.parent / "cache")
    try:
        proc = subprocess.run(
            [sys.executable, str(script)], cwd=bundle, env=env, capture_output=True, text=True, timeout=120
        )
    finally:
        script.unlink()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])


RUNTIME_READ = """
sys.modules["pandas"] = None  # as on a hub without pandas: importing it now raises ImportError
import numpy as np
from zoneinfo import ZoneInfo
b = rt.start()
b.catalog("awkward")  # Arrow first: astropy must not be imported for it
lazy = "astropy" not in sys.modules
t = b.catalog("awkward", as_="astropy")
out = {"lazy": lazy, "columns": {}}
for name in t.colnames:
    c = t[name]
    m = getattr(c, "mask", None)
    mask = [False] * len(c) if m is None or np.ndim(m) == 0 else [bool(x) for x in m]
    entry = {"class": type(c).__name__, "mask": mask, "unit": str(getattr(c, "unit", None) or ""),
             "ucd": c.info.meta.get("ucd"), "description": c.info.description}
    if entry["class"] == "Time":
        entry["timezone"] = c.info.meta["timezone"]
        values = c.to_datetime(timezone=ZoneInfo(entry["timezone"]))
        values = getattr(values, "unmasked", values)  # astropy 6+: a Masked array when nulls are present
        entry["values"] = [None if masked else v.isoformat() for v, masked in zip(values, mask)]
    else:
        entry["dtype"] = str(c.dtype)
        entry["values"] = [None if masked else v.item() for v, masked in zip(np.ma.getdata(c), mask)]
    out["columns"][name] = entry
print(json.dumps(out))
"""


def test_runtime_catalog_as_astropy_is_exact(bundle_dir: Path) -> None:
    res = _run(bundle_dir, RUNTIME_READ)
    cols = res["columns"]
    assert res["lazy"] is True, "the runtime imported astropy before as_='astropy' was asked for"

    ids = cols["source_id"]
    assert (ids["class"], ids["dtype"]) == ("MaskedColumn", "int64")
    assert ids["values"] == [BIG, 2**62 + 3, None, -(2**60) - 1] and ids["mask"] == [False, False, True, False]
    assert (ids["ucd"], ids["description"]) == ("meta.id;meta.main", "Gaia source id")

    ra = cols["ra"]
    assert ra["mask"] == [False, False, True, False]  # the NaN is a value, the null is masked
    assert ra["values"][0] == 10.5 and math.isnan(ra["values"][1]) and ra["values"][3] == 359.999
    assert (ra["unit"], ra["ucd"], ra["description"]) == ("deg", "pos.eq.ra;meta.main", "Right ascension, ICRS")
    mag = cols["mag"]
    assert mag["dtype"] == "float32" and mag["mask"] == [True, False, False, False]
    assert math.isnan(mag["values"][2]) and (mag["unit"], mag["ucd"]) == ("mag", "phot.mag;em.opt.G")
    assert cols["rv"]["unit"] == "km / s" and cols["rv"]["mask"] == [False, False, True, False]

    flag = cols["flag"]
    assert flag["dtype"] == "bool" and flag["values"] == [True, None, False, True]
    name = cols["name"]
    assert name["dtype"].startswith("<U") and name["mask"] == [False, True, False, False]
    assert name["values"] == ["é, x", None, "None", "Ωmega, ünïcode"]  # the text "None" is not a null

    seen = cols["seen"]
    assert (seen["class"], seen["timezone"], seen["description"]) == (
        "Time",
        "Europe/Amsterdam",
        "first seen (tz-aware)",
    )
    assert seen["values"] == [None if v is None else v.astimezone(AMS).isoformat() for v in SEEN]


def test_runtime_catalog_as_astropy_takes_every_column_type(bundle_dir: Path) -> None:
    res = _run(
        bundle_dir,
        """
import numpy as np
t = rt.start().catalog("types", as_="astropy")
print(json.dumps({n: [type(t[n]).__name__, str(getattr(t[n], "dtype", "")), int(np.sum(getattr(t[n], "mask", 0))),
                      list(t[n].shape)] for n in t.colnames}))
""",
    )
    expected = all_types_table()
    for name in expected.column_names:
        assert res[name][2] == expected.column(name).null_count, name  # every null masked, nothing else
    assert res["u64"][1] == "uint64" and res["i8"][1] == "int8" and res["pair"][3] == [3, 2]
    assert res["ts_utc"][0] == "Time" and res["ts_naive"][1].startswith("datetime64")


def test_runtime_to_astropy_outside_a_bundle(bundle_dir: Path) -> None:
    """The documented call for a catalog file without its bundle: metadata from the Arrow fields alone."""
    runtime = load_runtime_package("nbpack_runtime_copy", bundle_dir / "nbpack_runtime")
    try:
        table = runtime.to_astropy(pq.read_table(_catalog_paths(bundle_dir)["awkward"]))
    finally:
        unload_runtime("nbpack_runtime_copy")
    assert table["source_id"].dtype == np.int64 and int(table["source_id"][0]) == BIG
    assert list(table["source_id"].mask) == [False, False, True, False]
    assert table["rv"].unit == u.km / u.s and table["ra"].meta["ucd"] == "pos.eq.ra;meta.main"


@pytest.mark.parametrize("fmt", ["parquet.votable", "parquet"])
def test_astropy_readers_read_every_bundle_catalog(bundle_dir: Path, fmt: str) -> None:
    for name, path in _catalog_paths(bundle_dir).items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no unit, string-length or merge warnings either
            table = Table.read(path, format=fmt)
        assert len(table) == pq.ParquetFile(path).metadata.num_rows, name
        assert table.colnames == pq.read_schema(path).names, name
    table = Table.read(_catalog_paths(bundle_dir)["awkward"], format=fmt)
    assert table["ra"].unit == u.deg and table["mag"].unit == u.mag and table["rv"].unit == u.km / u.s
    assert table["ra"].meta["ucd"] == "pos.eq.ra;meta.main" and table["ra"].description == "Right ascension, ICRS"
    assert list(table["flag"]) == [True, None, False, True]  # objects: astropy keeps no mask from Arrow here
    assert list(table["name"][[0, 3]]) == ["é, x", "Ωmega, ünïcode"]
    assert table["seen"][0] == "2024-03-31T01:59:59.123456"  # ISO 8601 UTC, the VOTable form of a timestamp


def test_plain_parquet_reader_limits_are_as_documented(bundle_dir: Path) -> None:
    """What docs/astropy.md says ``format="parquet"`` loses on a bundle catalog; revisit the docs if this fails."""
    table = Table.read(_catalog_paths(bundle_dir)["awkward"], format="parquet")
    assert table["source_id"].dtype == np.float64 and int(table["source_id"][0]) != BIG  # ids rounded
    assert math.isnan(table["ra"][2]) and not hasattr(table["ra"], "mask")  # null and NaN both NaN
    assert table["name"][1] == "None"  # a null string reads as the text "None"
    assert table["flag"].dtype == object


def _astropy_written(folder: Path) -> dict[str, Path]:
    t = Table()
    t["source_id"] = MaskedColumn(np.array([BIG, 0, 2**62 + 3], np.int64), mask=[False, True, False])
    t["ra"] = MaskedColumn(
        [10.5, math.nan, 0.0], mask=[False, False, True], unit="deg", description="Right ascension, ICRS"
    )
    t["ra"].meta["ucd"] = "pos.eq.ra;meta.main"
    t["mag"] = MaskedColumn(np.array([12.5, 0.0, math.nan], np.float32), mask=[False, True, False], unit="mag")
    t["mag"].meta["ucd"] = "phot.mag"
    t["rv"] = [1.5, -2.0, 3.25] * u.km / u.s
    t["flag"] = MaskedColumn([True, False, False], mask=[False, True, False])
    t["name"] = MaskedColumn(["é, x", "", "Ωmega, ünïcode"], mask=[False, True, False])
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"parquet": folder / "plain.parquet", "parquet.votable": folder / "vo.parquet"}
    t.write(paths["parquet"], format="parquet")
    meta = {c: {"unit": str(t[c].unit) if t[c].unit else None, "ucd": t[c].meta.get("ucd")} for c in t.colnames}
    t.write(paths["parquet.votable"], format="parquet.votable", metadata=meta)
    return paths


def test_nbpack_build_keeps_units_ucds_and_masks_of_astropy_parquet(tmp_path: Path) -> None:
    paths = _astropy_written(tmp_path / "in")
    out = tmp_path / "b.zip"
    result = CliRunner().invoke(
        cli,
        [
            "build",
            "-o",
            str(out),
            "--title",
            "from astropy",
            "--catalog",
            f"plain={paths['parquet']}",
            "--catalog",
            f"vo={paths['parquet.votable']}",
            "--notebook",
            str(_notebook(tmp_path)),
        ],
    )
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as zf:
        zf.extractall(tmp_path / "b")
        manifest = json.loads(zf.read("nbpack.json"))
    for cat in manifest["catalogs"]:
        table = pq.read_table(tmp_path / "b" / cat["path"])
        assert table.column_names == ["source_id", "ra", "mag", "rv", "flag", "name"], cat["name"]
        rows = table.to_pydict()
        assert rows["source_id"] == [BIG, None, 2**62 + 3]
        assert rows["ra"][0] == 10.5 and math.isnan(rows["ra"][1]) and rows["ra"][2] is None
        assert rows["mag"][1] is None and math.isnan(rows["mag"][2])
        assert rows["flag"] == [True, None, False] and rows["name"] == ["é, x", None, "Ωmega, ünïcode"]
        info = {c["name"]: c for c in cat["columns"]}
        assert (info["ra"]["unit"], info["ra"]["ucd"]) == ("deg", "pos.eq.ra;meta.main"), cat["name"]
        assert (info["mag"]["unit"], info["mag"]["ucd"]) == ("mag", "phot.mag"), cat["name"]
        assert u.Unit(info["rv"]["unit"]) == u.km / u.s, cat["name"]  # "km / s" or VOUnit "km.s**-1"
    assert {c["name"]: c for c in manifest["catalogs"][0]["columns"]}["ra"]["description"] == "Right ascension, ICRS"
    # and astropy gets them back, masks included, through the bundle's runtime
    res = _run(
        tmp_path / "b",
        """
t = rt.start().catalog("vo", as_="astropy")
print(json.dumps({"ids": [None if m else int(v) for v, m in zip(t["source_id"].data.data, t["source_id"].mask)],
                  "rv": str(t["rv"].unit), "ucd": t["ra"].meta["ucd"]}))
""",
    )
    assert res == {"ids": [BIG, None, 2**62 + 3], "rv": "km / s", "ucd": "pos.eq.ra;meta.main"}


def _notebook(folder: Path) -> Path:
    path = folder / "nb.ipynb"
    path.write_bytes(template_notebook("pass"))
    return path
