"""astropy's Parquet header (``table_meta_yaml``) read without astropy: column metadata and masked columns.

astropy's ``format="parquet"`` writer keeps units, descriptions and ``meta`` (ucd, utype) only in this YAML
header, and stores a masked column as the data column ``name`` (masked slots hold a fill value) plus a bool
column ``name.mask``, both listed under ``meta.__serialized_columns__``. An input written that way is turned
back into one Arrow column with real nulls and Arrow field metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

__all__ = ["AstropyLayout", "astropy_layout"]

_MASKED = "astropy.table.column.MaskedColumn"
_KEYS = ("unit", "description", "ucd", "utype")


class _HeaderLoader(yaml.SafeLoader):
    """SafeLoader that reads astropy's tags (``!astropy.table.SerializedColumn`` …) as plain data, never objects."""


def _plain(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_HeaderLoader.add_multi_constructor("!", _plain)
_HeaderLoader.add_multi_constructor("tag:yaml.org,2002:python/", _plain)


@dataclass
class AstropyLayout:
    """How to turn batches of an astropy-written Parquet file into plain columns with nulls."""

    schema: pa.Schema  # output schema: mask columns gone, field metadata from the header
    masks: dict[str, str] = field(default_factory=dict)  # data column → its ``.mask`` column

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if not self.masks:
            return batch
        arrays = []
        for f in self.schema:
            data = batch.column(f.name)
            mask_name = self.masks.get(f.name)
            if mask_name is not None:
                mask = pc.fill_null(batch.column(mask_name), False)
                data = pc.if_else(mask, pa.scalar(None, type=data.type), data)
            arrays.append(data)
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def astropy_layout(schema: pa.Schema) -> AstropyLayout:
    """Read ``table_meta_yaml`` from a Parquet schema; a missing or unreadable header changes nothing."""
    header = _header(schema)
    if header is None:
        return AstropyLayout(schema)
    described = {}
    for entry in header.get("datatype") or []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            described[entry["name"]] = _column_meta(entry)
    masks = _mask_columns(_as_dict(header.get("meta")).get("__serialized_columns__"), schema)
    hidden = set(masks.values())
    fields = []
    for f in schema:
        if f.name in hidden:
            continue
        existing = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in (f.metadata or {}).items()}
        meta = {**described.get(f.name, {}), **existing}
        fields.append(f.with_metadata(meta) if meta else f)
    return AstropyLayout(pa.schema(fields, metadata=schema.metadata), masks)


def _header(schema: pa.Schema) -> dict | None:
    text = (schema.metadata or {}).get(b"table_meta_yaml")
    if not text:
        return None
    try:
        header = yaml.load(text.decode("utf-8"), Loader=_HeaderLoader)  # a SafeLoader: builds no objects
    except (yaml.YAMLError, UnicodeDecodeError, ValueError):
        return None
    return header if isinstance(header, dict) else None


def _as_dict(value: Any) -> dict:
    """A YAML mapping or ``!!omap`` (a list of pairs or of one-key mappings) as a dict."""
    if isinstance(value, dict):
        return value
    out: dict = {}
    for item in value if isinstance(value, list) else []:
        if isinstance(item, tuple) and len(item) == 2:
            out[item[0]] = item[1]
        elif isinstance(item, dict):
            out.update(item)
    return out


def _column_meta(entry: dict) -> dict[str, str]:
    meta = {k: entry[k] for k in ("unit", "description") if isinstance(entry.get(k), str) and entry[k]}
    extra = _as_dict(entry.get("meta"))
    meta.update({k: extra[k] for k in ("ucd", "utype") if isinstance(extra.get(k), str) and extra[k]})
    return {k: meta[k] for k in _KEYS if k in meta}


def _mask_columns(serialized: Any, schema: pa.Schema) -> dict[str, str]:
    """Masked columns stored as ``name`` + ``name.mask``; other mixins (Time, SkyCoord…) keep their parts."""
    masks = {}
    for name, spec in _as_dict(serialized).items():
        spec = _as_dict(spec)
        if spec.get("__class__") != _MASKED:
            continue
        data, mask = _as_dict(spec.get("data")).get("name"), _as_dict(spec.get("mask")).get("name")
        if data != name or name not in schema.names:
            continue
        if isinstance(mask, str) and mask in schema.names and pa.types.is_boolean(schema.field(mask).type):
            masks[name] = mask
    return masks
