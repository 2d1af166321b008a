"""ESAP shopping basket → bundle inputs: catalogs per archive, data-lake file references, skipped items.

ESAP stores each basket item as ``{"item_data": "<JSON text>"}`` inside the user profile's
``shopping_cart``; the JSON is what the GUI built, ``{"archive": ..., "record": {...}}`` (Zooniverse:
``{"archive": "zooniverse", "catalog", "project_id", "workflow_id"?, "category"}``). docs/esap.md lists
each kind and how it maps; anything not understood is reported in ``skipped``, never dropped.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa

from nbpack.bundle.esap_pages import table_from_esap_pages, table_from_esap_results
from nbpack.bundle.refs import parse_ref
from nbpack.errors import InvalidInput, NbpackError
from nbpack.runtime.nbpack_runtime.vocab import media_type

__all__ = ["BasketInputs", "basket_to_inputs", "basket_items", "DATA_URL_KEYS"]

# Record keys whose value is the data itself; thumbnails, previews and info pages are not data.
DATA_URL_KEYS = ("access_url", "accessURL", "download_url", "url")
_DATA_SCHEMES = ("https", "http", "davs", "dav", "s3", "root")
_CATALOG_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_FILE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class BasketInputs:
    """What a basket contributes to a bundle: catalogs by name, file references, skipped items, origin."""

    catalogs: dict[str, pa.Table] = field(default_factory=dict)
    files: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    origin: dict = field(default_factory=dict)


class _Skip(Exception):
    """An item that cannot be interpreted; the message is the reason reported for it."""


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


def _safe_file_name(raw: str) -> str:
    base = posixpath.basename(unquote(raw).rstrip("/")) or "file"
    base = base.rsplit(":", 1)[-1]
    name = _FILE_NAME.sub("_", base).lstrip(".-") or "file"
    if len(name) > 128:
        stem, ext = posixpath.splitext(name)
        name = stem[: 128 - len(ext[:16])] + ext[:16]
    return name


def _media_type(name: str, record: dict) -> str | None:
    given = record.get("access_format") or record.get("content_type")
    if isinstance(given, str) and "/" in given:
        return given
    return media_type(name)


def _hex(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:08x}"
    if isinstance(value, str) and value.strip():
        return value.strip().lower().removeprefix("0x")
    return None


def _rucio_ref(record: dict) -> dict:
    did = record.get("did")
    scope, name = record.get("scope"), record.get("name")
    if not isinstance(did, str) or ":" not in did:
        if not (isinstance(scope, str) and scope and isinstance(name, str) and name):
            raise _Skip("Rucio record has neither 'did' nor 'scope' and 'name'")
        did = f"{scope}:{name}"
    ref: dict[str, Any] = {"name": _safe_file_name(did.split(":", 1)[1]), "uri": did}
    size = next((record[k] for k in ("bytes", "size", "size_in_bytes") if record.get(k) is not None), None)
    if size is not None:
        try:
            ref["size"] = int(size)
        except (TypeError, ValueError):
            raise _Skip(f"Rucio record size {size!r} is not an integer") from None
    checksums = {}
    adler = _hex(record.get("adler32"))
    if adler is not None:
        checksums["adler32"] = adler.rjust(8, "0")
    md5 = _hex(record.get("md5"))
    if md5 is not None:
        checksums["md5"] = md5
    if checksums:
        ref["checksums"] = checksums
    site = record.get("rse") or record.get("RSE") or record.get("site")
    if isinstance(site, str) and site:
        ref["site"] = site
    kind = record.get("type") or record.get("did_type")
    if isinstance(kind, str) and kind.upper() in ("DATASET", "CONTAINER"):
        ref["description"] = f"Rucio {kind.lower()} (all its files)"
    return ref


def _url_refs(record: dict) -> list[dict]:
    refs = []
    for key in DATA_URL_KEYS:
        url = record.get(key)
        if not isinstance(url, str) or urlsplit(url).scheme.lower() not in _DATA_SCHEMES:
            continue
        raw_name = record.get("name") if isinstance(record.get("name"), str) else urlsplit(url).path
        name = _safe_file_name(raw_name or url)
        ref: dict[str, Any] = {"name": name, "uri": url}
        media = _media_type(name, record)
        if media:
            ref["media_type"] = media
        described = record.get("dataProductSubType") or record.get("title") or record.get("dataproduct_type")
        if isinstance(described, str) and described:
            ref["description"] = described
        refs.append(ref)
    return refs


def _is_esap_results(record: dict) -> bool:
    return isinstance(record.get("fields"), list) and isinstance(record.get("result"), str)


def _is_esap_page(record: dict) -> bool:
    return isinstance(record.get("results"), list) and any(k in record for k in ("pages", "count", "requested_page"))


class _Collector:
    """Accumulates rows, typed record groups and file refs while items are read."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict]] = {}
        self.typed: dict[tuple, list[tuple[Any, dict, list[dict]]]] = {}
        self.pages: dict[str, list[tuple[Any, dict, list[dict]]]] = {}
        self.files: list[dict] = []
        self.uris: set[str] = set()
        self.names: set[str] = set()
        self.seen: dict[str, int] = {}

    def check_file(self, ref: dict) -> None:
        """Raise ``_Skip`` when ``ref`` would not be a valid bundle file reference."""
        try:
            parse_ref(ref)
        except NbpackError as err:
            raise _Skip(err.message) from None

    def add_file(self, ref: dict) -> None:
        if ref["uri"] in self.uris:
            return  # the same file picked twice (e.g. two queries) is fetched once
        name, n = ref["name"], 1
        stem, ext = posixpath.splitext(name)
        while name in self.names:
            n += 1
            name = f"{stem[: 120 - len(ext)]}-{n}{ext}"
        try:
            checked = parse_ref({**ref, "name": name})
        except NbpackError as err:
            raise _Skip(err.message) from None
        self.names.add(name)
        self.uris.add(ref["uri"])
        self.files.append(checked)


def _record(data: dict) -> dict:
    record = data.get("record")
    if isinstance(record, str):
        try:
            record = json.loads(record)
        except ValueError:
            raise _Skip("record is text but not JSON") from None
    if not isinstance(record, dict) or not record:
        raise _Skip(f"{data['archive']} item has no 'record' object")
    return record


def _read_item(item: Any, data: dict, out: _Collector) -> tuple[list[dict], Callable[[], None]]:
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
        return [], lambda: out.rows.setdefault(name, []).append(row)
    record = _record(data)
    if _is_esap_page(record):
        refs = [r for row in record["results"] if isinstance(row, dict) for r in _url_refs(row)]
        # refs of typed records wait until their table builds, so a failed group adds no files
        return [], lambda: out.pages.setdefault(_catalog_name(archive), []).append((item, record, refs))
    if _is_esap_results(record):
        names = tuple(str(f.get("name")) if isinstance(f, dict) else str(f) for f in record["fields"])
        refs = _url_refs(record)
        return [], lambda: out.typed.setdefault((archive, names), []).append((item, record, refs))
    if archive == "rucio":
        return [_rucio_ref(record)], lambda: out.rows.setdefault("rucio", []).append(record)
    return _url_refs(record), lambda: out.rows.setdefault(_catalog_name(archive), []).append(record)


def _build_typed(out: _Collector, inputs: BasketInputs, add: Callable[[str, pa.Table], None]) -> None:
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
            for item, _, _ in group:
                inputs.skipped.append({"item": item, "reason": err.message})
                archive = _item_data(item)["archive"].strip()
                out.seen[archive] -= 1
            continue
        add(name, table)
        if "access_url" in table.column_names and pa.types.is_string(table.schema.field("access_url").type):
            # ObsCore rows carry their data link as a column rather than a record key
            column = [u for u in table.column("access_url").to_pylist() if u]
            group[0][2].extend(r for u in column for r in _url_refs({"access_url": u}))
        for item, _, refs in group:
            try:
                for ref in refs:
                    out.add_file(ref)
            except _Skip as why:
                inputs.skipped.append({"item": item, "reason": f"row kept in catalog {name!r}; file: {why}"})


def basket_to_inputs(items: list[dict] | dict) -> BasketInputs:
    """Turn ESAP shopping-basket items (or the user profile holding them) into bundle inputs."""
    inputs = BasketInputs()
    out = _Collector()
    for item in basket_items(items):
        try:
            data = _item_data(item)
            refs, commit = _read_item(item, data, out)
            for ref in refs:
                out.check_file(ref)
        except _Skip as why:
            inputs.skipped.append({"item": item, "reason": str(why)})
            continue
        commit()
        for ref in refs:
            out.add_file(ref)
        archive = data["archive"].strip()
        out.seen[archive] = out.seen.get(archive, 0) + 1

    def add(name: str, table: pa.Table) -> None:
        unique, n = name, 1
        while unique in inputs.catalogs:
            n += 1
            unique = f"{name[:60]}_{n}"
        inputs.catalogs[unique] = table

    for name, rows in out.rows.items():
        add(name, _rows_table(rows))
    inputs.origin = {"service": "esap"}
    if out.typed or out.pages:
        _build_typed(out, inputs, add)
    inputs.files = out.files
    inputs.origin["archives"] = {k: n for k, n in sorted(out.seen.items()) if n}
    return inputs
