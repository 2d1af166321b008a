"""Arrow table to astropy Table, column by column."""

from __future__ import annotations

from typing import Any

from .display import need


def to_astropy(table: Any, entry: dict | None = None) -> Any:
    """Arrow table → astropy Table, column by column from Arrow (pandas would turn int64 with nulls into float64).

    A null is masked and a NaN stays an unmasked NaN; tz-aware timestamps become UTC ``Time`` columns with the
    zone name in ``info.meta['timezone']``; unit, description, ucd and utype come from the field metadata (the
    manifest entry as fallback). Outside a bundle: ``to_astropy(pyarrow.parquet.read_table(path))``.
    """
    need("astropy", "catalog(as_='astropy')", "pip install astropy")
    from astropy.table import Table
    from astropy.time import Time

    entry = entry or {}
    columns = {c["name"]: c for c in entry.get("columns", [])}
    out = Table(meta={"name": entry["name"]} if entry.get("name") else {})
    for f, chunked in zip(table.schema, table.columns, strict=True):
        meta = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
        known = {k: v for k, v in columns.get(f.name, {}).items() if k in ("unit", "description", "ucd", "utype")}
        info = {**known, **meta}
        col = _astropy_column(chunked, f.type)
        if isinstance(col, Time):
            col.info.meta = {"timezone": f.type.tz}
        elif info.get("unit"):
            col.unit = _astropy_unit(info["unit"])
        if info.get("description"):
            col.info.description = info["description"]
        for key in ("ucd", "utype"):
            if info.get(key):
                col.info.meta[key] = info[key]
        out[f.name] = col
    return out


def _astropy_column(chunked: Any, arrow_type: Any) -> Any:
    """One Arrow column → astropy Column / MaskedColumn / Time, nulls masked."""
    import numpy as np
    import pyarrow as pa
    from astropy.table import Column, MaskedColumn

    array = chunked.combine_chunks() if isinstance(chunked, pa.ChunkedArray) else chunked
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    t = array.type
    mask = array.is_null().to_numpy(zero_copy_only=False) if array.null_count else None
    if pa.types.is_timestamp(t) and t.tz:
        # NaT for nulls, then masked explicitly: Time's own NaT handling differs between astropy versions.
        values = array.to_numpy(zero_copy_only=False)
        time = _utc_time(np.where(mask, np.datetime64(0, t.unit), values) if mask is not None else values)
        time.precision = {"s": 0, "ms": 3, "us": 6, "ns": 9}[t.unit]
        if mask is not None:
            time[mask] = np.ma.masked
        return time
    if pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t):
        # Filling nulls first keeps the numpy dtype (int64 stays int64); a NaN is data, not a null.
        zero = pa.scalar(False if pa.types.is_boolean(t) else 0, t)
        values = (array.fill_null(zero) if mask is not None else array).to_numpy(zero_copy_only=False)
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        values = array.fill_null("").to_numpy(zero_copy_only=False).astype(str) if len(array) else np.array([], str)
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
        values = (
            array.fill_null(b"").to_numpy(zero_copy_only=False).astype(bytes) if len(array) else np.array([], bytes)
        )
    elif pa.types.is_fixed_size_list(t) and not array.null_count and not array.flatten().null_count:
        values = array.flatten().to_numpy(zero_copy_only=False).reshape(len(array), t.list_size)
    else:
        # Naive timestamps, dates and durations as numpy datetime64/timedelta64 (NaT under the mask);
        # decimals, times of day and variable-length lists as objects.
        values = array.to_numpy(zero_copy_only=False)
    if mask is None:
        return Column(values, copy=False)
    return MaskedColumn(values, mask=mask, copy=False)


def _utc_time(values: Any) -> Any:
    """UTC instants (numpy datetime64) → astropy Time, through ERFA's dtf2d as Time(format="datetime64") does,
    without its detour through ISO strings (30x faster at 1e5 rows, the same to 2e-11 s)."""
    import warnings

    import erfa
    import numpy as np
    from astropy.time import Time

    days = values.astype("M8[D]")
    months = days.astype("M8[M]")
    year = months.astype("M8[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (days - months).astype(np.int64) + 1
    hour, rest = np.divmod((values - days) / np.timedelta64(1, "s"), 3600.0)
    minute, second = np.divmod(rest, 60.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)  # "dubious year" outside the leap-second table
        jd1, jd2 = erfa.dtf2d(b"UTC", year, month, day, hour.astype(np.int64), minute.astype(np.int64), second)
    time = Time(jd1, jd2, format="jd", scale="utc")
    time.format = "isot"
    return time


def _astropy_unit(text: str) -> Any:
    """A unit string as astropy understands it: generic ("km / s"), then VOUnit ("km.s**-1"), then CDS."""
    import astropy.units as u

    for fmt in ("generic", "vounit", "cds"):
        try:
            return u.Unit(text, format=fmt)
        except ValueError:
            continue
    return u.Unit(text, parse_strict="silent")
