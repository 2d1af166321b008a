"""ESAP shopping basket → bundle inputs: catalogs per archive, data-lake file references, a report per item.

ESAP stores each basket item as ``{"item_data": "<JSON text>"}`` inside the user profile's
``shopping_cart``; the JSON is what the GUI built, ``{"archive": ..., "record": ...}`` where ``record`` is an
object (apertif, astron_vo, rucio, multi_query), an array of strings (vo_reg: the IVOA page's
``result.split(",")``) or a votable.js row array (samp); Zooniverse items are
``{"archive": "zooniverse", "catalog", "project_id", "workflow_id"?, "category"}``. docs/esap.md lists each kind
and how it maps. Every item lands somewhere; one that cannot be read is reported in ``skipped``, never dropped
silently, and a basket of which nothing could be used is refused (422) with the reasons.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from nbpack.bundle.esap_pages import table_from_esap_pages, table_from_esap_results
from nbpack.bundle.refs import parse_ref
from nbpack.errors import InvalidInput, NbpackError
from nbpack.esap.files import DATA_URL_KEYS, Skip, row_refs, rucio_ref, url_refs

__all__ = ["BasketInputs", "basket_to_inputs", "basket_items", "DATA_URL_KEYS"]

_CATALOG_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_Skip = Skip


@dataclass
class BasketInputs:
    """What a basket contributes to a bundle: catalogs by name, file references, skipped items, origin, and
    ``items``: per basket item (in order) what it became (``catalog`` and ``files``) or why it was skipped."""

    catalogs: dict[str, pa.Table] = field(default_factory=dict)
    files: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    origin: dict = field(default_factory=dict)
    items: list[dict] = field(default_factory=list)


def basket_items(basket: list | dict) -> list:
    """The raw item list from a basket list, a user profile, or the user-profiles API page."""
    if isinstance(basket, list):
        return basket
    if not isinstance(basket, dict):
        raise InvalidInput(f"basket must be a list of items or a user profile object, got {type(basket).__name__}")
    if isinstance(basket.get("shopping_cart"), list):
        return basket["shopping_cart"]
    results = basket.get("results")
    if isinstance(results, list) and all(isinstance(p, dict) and "shopping_cart" in p for p in results):
        # GET esap-api/accounts/user-profiles/ answers a DRF page holding the caller's one profile
        return [item for profile in results for item in (profile.get("shopping_cart") or [])]
    if "archive" in basket or "item_data" in basket:
        return [basket]
    raise InvalidInput("basket is neither a list of items nor a user profile with a 'shopping_cart'")


def _item_data(item: Any) -> dict:
    if not isinstance(item, dict):
        raise _Skip(f"item is a {type(item).__name__}, not a JSON object")
    data: Any = item.get("item_data", item)
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError:
            try:
                # some stored items use Python-style single quotes; ESAP's Zooniverse client does the same swap
                data = json.loads(data.replace("'", '"') if isinstance(data, str) else data)
            except json.JSONDecodeError as err:
                raise _Skip(f"item_data is not valid JSON ({err.msg})") from None
    if not isinstance(data, dict):
        raise _Skip(f"item_data is a {type(data).__name__}, not a JSON object")
    archive = data.get("archive")
    if not isinstance(archive, str) or not archive.strip():
        raise _Skip("item has no 'archive' naming where it came from")
    return data


def _catalog_name(*parts: Any) -> str:
    name = _CATALOG_NAME.sub("_", "_".join(str(p) for p in parts if p not in (None, ""))).strip("._-")
    if not name or not (name[0].isalpha() or name[0] == "_"):
        name = f"_{name}"
    return name[:64]


def _cell(value: Any) -> Any:
    # Parquet columns need one type; nested values travel as JSON text the notebook can json.loads
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _positional_row(values: list) -> dict:
    """A row without names (vo_reg, samp): text columns named by position, as the page showed them."""
    return {f"col_{i + 1}": _text(v) for i, v in enumerate(values)}


def _rows_table(rows: list[dict]) -> pa.Table:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    columns = {}
    for name in names:
        values = [_cell(row.get(name)) for row in rows]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # mixed types across records (e.g. "1.5" and 1.5): keep every value, as text
            columns[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.table(columns)


def _is_esap_results(record: dict) -> bool:
    return isinstance(record.get("fields"), list) and bool(record["fields"]) and isinstance(record.get("result"), str)


def _is_esap_page(record: dict) -> bool:
    return isinstance(record.get("results"), list) and any(k in record for k in ("pages", "count", "requested_page"))


class _Collector:
    """Accumulates rows, typed record groups, file refs and the per-item report while items are read."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict]] = {}
        self.row_items: dict[str, list[int]] = {}
        self.typed: dict[tuple, list[tuple[int, dict, list[dict]]]] = {}
        self.pages: dict[str, list[tuple[int, dict, list[dict]]]] = {}
        self.files: list[dict] = []
        self.by_uri: dict[str, str] = {}
        self.names: set[str] = set()
        self.seen: dict[str, int] = {}
        self.report: list[dict] = []

    def check_file(self, ref: dict) -> None:
        """Raise ``_Skip`` when ``ref`` would not be a valid bundle file reference."""
        try:
            parse_ref(ref)
        except NbpackError as err:
            raise _Skip(err.message) from None

    def add_file(self, ref: dict, index: int) -> None:
        if ref["uri"] in self.by_uri:
            # the same file picked twice (e.g. two queries) is fetched once; both items name it
            self._note_file(index, self.by_uri[ref["uri"]])
            return
        name, n = ref["name"], 1
        stem, ext = _split_ext(name)
        while name in self.names:
            n += 1
            name = f"{stem[: 120 - len(ext)]}-{n}{ext}"
        try:
            checked = parse_ref({**ref, "name": name})
        except NbpackError as err:
            raise _Skip(err.message) from None
        self.names.add(name)
        self.by_uri[ref["uri"]] = name
        self.files.append(checked)
        self._note_file(index, name)

    def _note_file(self, index: int, name: str) -> None:
        files = self.report[index].setdefault("files", [])
        if name not in files:
            files.append(name)

    def add_row(self, catalog: str, row: dict, index: int) -> None:
        self.rows.setdefault(catalog, []).append(row)
        self.row_items.setdefault(catalog, []).append(index)


def _split_ext(name: str) -> tuple[str, str]:
    """Stem and extension, a double one kept whole (``x.MS.tar`` → ``x``, ``.MS.tar``)."""
    stem, ext = posixpath.splitext(name)
    inner, ext2 = posixpath.splitext(stem)
    if ext2 and len(ext2) <= 6 and inner:
        return inner, ext2 + ext
    return stem, ext


def _record(data: dict) -> dict | list:
    record = data.get("record")
    if isinstance(record, str):
        try:
            record = json.loads(record)
        except ValueError:
            raise _Skip("record is text but not JSON") from None
    if isinstance(record, list) and record:
        return record
    if not isinstance(record, dict) or not record:
        raise _Skip(f"{data['archive']} item has no 'record' (an object, or an array of values)")
    return record


def _read_item(index: int, data: dict, out: _Collector) -> tuple[list[dict], Callable[[], None]]:
    """The file refs an item contributes and a function that records its rows once the refs pass."""
    archive = data["archive"].strip()
    if archive == "zooniverse":
        entity = data.get("catalog")
        if entity not in ("project", "workflow"):
            raise _Skip(f"Zooniverse item catalog must be 'project' or 'workflow', got {entity!r}")
        ident = data.get(f"{entity}_id")
        category = data.get("category")
        if ident in (None, "") or not isinstance(category, str) or not category:
            raise _Skip(f"Zooniverse item needs '{entity}_id' and 'category'")
        row = {k: _cell(v) for k, v in data.items() if k != "archive"}
        name = _catalog_name("zooniverse", entity, ident, category)
        return [], lambda: out.add_row(name, row, index)
    record = _record(data)
    if isinstance(record, list):
        # vo_reg (the IVOA page's comma-split row) and samp (a votable.js row): values without names
        positional = _positional_row(record)
        return row_refs(record), lambda: out.add_row(_catalog_name(archive), positional, index)
    if _is_esap_page(record):
        refs = [r for row in record["results"] if isinstance(row, dict) for r in url_refs(row)]
        # refs of typed records wait until their table builds, so a failed group adds no files
        return [], lambda: out.pages.setdefault(_catalog_name(archive), []).append((index, record, refs))
    if _is_esap_results(record):
        names = tuple(str(f.get("name")) if isinstance(f, dict) else str(f) for f in record["fields"])
        refs = url_refs(record)
        return [], lambda: out.typed.setdefault((archive, names), []).append((index, record, refs))
    if archive == "rucio":
        return [rucio_ref(record)], lambda: out.add_row("rucio", record, index)
    return url_refs(record), lambda: out.add_row(_catalog_name(archive), record, index)


def _build_typed(
    out: _Collector, inputs: BasketInputs, items: list, add: Callable[[str, pa.Table, list[int]], None]
) -> None:
    def from_pages(pages: list[dict]) -> pa.Table:
        table, provenance = table_from_esap_pages(pages)
        if provenance:
            inputs.origin.setdefault("queries", []).append(provenance)
        return table

    groups: list[tuple[str, Callable[[list[dict]], pa.Table], list]]
    groups = [(_catalog_name(archive), table_from_esap_results, group) for (archive, _), group in out.typed.items()]
    groups += [(name, from_pages, group) for name, group in out.pages.items()]
    for name, build, group in groups:
        try:
            table = build([record for _, record, _ in group])
        except NbpackError as err:
            for index, _, _ in group:
                inputs.skipped.append({"item": items[index], "reason": err.message})
                out.report[index] = {"item": index, "skipped": err.message}
                archive = _item_data(items[index])["archive"].strip()
                out.seen[archive] -= 1
            continue
        add(name, table, [index for index, _, _ in group])
        if "access_url" in table.column_names and pa.types.is_string(table.schema.field("access_url").type):
            # ObsCore rows carry their data link as a column rather than a record key
            column = [u for u in table.column("access_url").to_pylist() if u]
            group[0][2].extend(r for u in column for r in url_refs({"access_url": u}))
        for index, _, refs in group:
            try:
                for ref in refs:
                    out.add_file(ref, index)
            except _Skip as why:
                reason = f"row kept in catalog {name!r}; file: {why}"
                inputs.skipped.append({"item": items[index], "reason": reason})
                out.report[index]["file_skipped"] = str(why)


def _unusable(inputs: BasketInputs, count: int) -> InvalidInput:
    if not count:
        err = InvalidInput("the basket holds no items: send no basket, or one with the items to analyse")
    else:
        reasons = "; ".join(f"item {r['item']}: {r['skipped']}" for r in inputs.items[:5])
        more = f" (and {count - 5} more)" if count > 5 else ""
        err = InvalidInput(f"nothing in the basket could be used ({count} item(s)): {reasons}{more}")
    err.code = "basket_unusable"
    err.http_status = 422
    return err


def basket_to_inputs(items: list[dict] | dict) -> BasketInputs:
    """Turn ESAP shopping-basket items (or the user profile holding them) into bundle inputs.

    422 ``basket_unusable`` when the basket is empty or none of its items could be used.
    """
    inputs = BasketInputs()
    out = _Collector()
    raw = basket_items(items)
    for index, item in enumerate(raw):
        out.report.append({"item": index})
        try:
            data = _item_data(item)
            archive = data["archive"].strip()
            out.report[index]["archive"] = archive
            refs, commit = _read_item(index, data, out)
            for ref in refs:
                out.check_file(ref)
        except _Skip as why:
            inputs.skipped.append({"item": item, "reason": str(why)})
            out.report[index] = {"item": index, "skipped": str(why)}
            continue
        commit()
        for ref in refs:
            out.add_file(ref, index)
        out.seen[archive] = out.seen.get(archive, 0) + 1

    def add(name: str, table: pa.Table, indexes: list[int]) -> None:
        unique, n = name, 1
        while unique in inputs.catalogs:
            n += 1
            unique = f"{name[:60]}_{n}"
        inputs.catalogs[unique] = table
        one_each = table.num_rows == len(indexes)  # a query page item holds many rows: no single row to name
        for row, index in enumerate(indexes):
            out.report[index].update({"catalog": unique, **({"row": row} if one_each else {})})

    for name, rows in out.rows.items():
        add(name, _rows_table(rows), out.row_items[name])
    inputs.origin = {"service": "esap"}
    if out.typed or out.pages:
        _build_typed(out, inputs, raw, add)
    inputs.files = out.files
    inputs.origin["archives"] = {k: n for k, n in sorted(out.seen.items()) if n}
    inputs.items = out.report
    if not inputs.catalogs and not inputs.files:
        raise _unusable(inputs, len(raw))
    return inputs
