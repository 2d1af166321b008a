"""Synthetic astronomy catalogs of any size, shaped like a Gaia-style source table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

__all__ = ["make_catalog", "write_csv", "CLASSES"]

CLASSES = ("STAR", "GALAXY", "QSO", "WD", "BINARY", "UNKNOWN")
_EPOCH_US = 1_388_534_400_000_000  # 2014-01-01T00:00:00Z: start of a Gaia-like mission
_SPAN_US = 34 * 30 * 86_400 * 1_000_000


def _field(name: str, array: pa.Array, unit: str = "", ucd: str = "", description: str = "") -> tuple:
    meta = {k: v for k, v in (("unit", unit), ("ucd", ucd), ("description", description)) if v}
    return pa.field(name, array.type, metadata=meta or None), array


def _floats(values: np.ndarray, null_fraction: float, rng: np.random.Generator) -> pa.Array:
    mask = rng.random(len(values)) < null_fraction if null_fraction else None
    return pa.array(values, type=pa.float64(), mask=mask)


def make_catalog(rows: int, seed: int = 0) -> pa.Table:
    """A table of ``rows`` sources: 22 columns of int64/float64/bool/string/timestamp, some with nulls, units set."""
    rng = np.random.default_rng(seed)
    n = int(rows)
    source_id = np.arange(n, dtype=np.int64) * 7919 + 4_000_000_000_000_000
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    g = rng.normal(17.5, 1.8, n)
    bp_rp = rng.normal(1.1, 0.5, n)
    parallax_null = rng.random(n) < 0.05
    classes = pa.array(CLASSES).take(pa.array(rng.integers(0, len(CLASSES), n)))
    classes = pc.if_else(pa.array(rng.random(n) < 0.10), pa.scalar(None, pa.string()), classes)
    designation = pc.binary_join_element_wise("Gaia DR3 ", pc.cast(pa.array(source_id), pa.string()), "")
    obs_time = pa.array(_EPOCH_US + rng.integers(0, _SPAN_US, n), type=pa.timestamp("us", tz="UTC"))
    has_xp = pa.array(rng.random(n) < 0.3, mask=rng.random(n) < 0.02)
    cols = [
        _field("source_id", pa.array(source_id), ucd="meta.id;meta.main", description="unique source identifier"),
        _field("designation", designation, ucd="meta.id", description="catalog designation"),
        _field("ra", pa.array(ra), "deg", "pos.eq.ra;meta.main", "right ascension (ICRS)"),
        _field("dec", pa.array(dec), "deg", "pos.eq.dec;meta.main", "declination (ICRS)"),
        _field("ra_error", pa.array(rng.gamma(2.0, 0.05, n)), "mas", "stat.error;pos.eq.ra"),
        _field("dec_error", pa.array(rng.gamma(2.0, 0.05, n)), "mas", "stat.error;pos.eq.dec"),
        _field("parallax", pa.array(rng.normal(0.8, 1.5, n), mask=parallax_null), "mas", "pos.parallax"),
        _field("parallax_error", pa.array(rng.gamma(2.0, 0.08, n), mask=parallax_null), "mas", "stat.error"),
        _field("pmra", pa.array(rng.normal(-2.0, 6.0, n)), "mas/yr", "pos.pm;pos.eq.ra"),
        _field("pmdec", pa.array(rng.normal(-3.0, 6.0, n)), "mas/yr", "pos.pm;pos.eq.dec"),
        _field("phot_g_mean_mag", pa.array(g), "mag", "phot.mag;em.opt"),
        _field("phot_bp_mean_mag", _floats(g + bp_rp * 0.4, 0.02, rng), "mag", "phot.mag;em.opt.B"),
        _field("phot_rp_mean_mag", _floats(g - bp_rp * 0.6, 0.02, rng), "mag", "phot.mag;em.opt.R"),
        _field("bp_rp", pa.array(bp_rp), "mag", "phot.color"),
        _field("radial_velocity", _floats(rng.normal(0.0, 40.0, n), 0.7, rng), "km/s", "spect.dopplerVeloc"),
        _field("ruwe", pa.array(rng.lognormal(0.0, 0.15, n)), "", "stat.fit.goodness"),
        _field("n_obs", pa.array(rng.integers(8, 500, n, dtype=np.int64)), "", "meta.number"),
        _field("healpix_8", pa.array(rng.integers(0, 786_432, n, dtype=np.int64)), "", "pos.healpix"),
        _field("is_variable", pa.array(rng.random(n) < 0.04), "", "meta.code;src.var"),
        _field("has_xp", has_xp, "", "meta.code"),
        _field("classification", classes, "", "src.class", "most probable class"),
        _field("obs_time", obs_time, "", "time.epoch", "reference epoch of the observation"),
    ]
    return pa.Table.from_arrays([a for _, a in cols], schema=pa.schema([f for f, _ in cols]))


def write_csv(table: pa.Table, path: Path | str) -> Path:
    """Write ``table`` as a header-first CSV file (nulls as empty fields) and return its path."""
    path = Path(path)
    pcsv.write_csv(table, path)
    return path
