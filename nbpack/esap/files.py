"""File references from what ESAP basket records carry: data URLs anywhere in a record, Rucio DIDs.

A file keeps its own name and extension: the URL's last path segment when it has one (ESAP's ``name`` is
often the target, e.g. "P003+41", not the file), else a file name given in the query string, else the record's
name. A CASA measurement set (``.MS``) is a directory, typed ``inode/directory``, never troff's ``.ms``.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from nbpack.runtime.nbpack_runtime.vocab import media_type

__all__ = [
    "DATA_URL_KEYS",
    "NOT_DATA_KEYS",
    "Skip",
    "is_data_url",
    "row_refs",
    "rucio_ref",
    "safe_file_name",
    "url_refs",
]

# Record keys whose value is the data itself, looked at first; then any other key holding a URL, except these
# (pictures, pages about the data, and the query that found it are not the data).
DATA_URL_KEYS = ("access_url", "accessURL", "download_url", "url")
NOT_DATA_KEYS = frozenset({"thumbnail", "thumbnail_url", "preview", "query", "dataset", "info", "info_url", "link"})
_DATA_SCHEMES = ("https", "http", "davs", "dav", "s3", "root")
_FILE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_HAS_EXT = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,9}$")


class Skip(Exception):
    """An item (or one of its files) that cannot be used; the message is the reason reported for it."""


def safe_file_name(raw: str) -> str:
    """A bundle file name from a path, URL segment or DID name: safe characters, extension kept."""
    base = posixpath.basename(unquote(raw).rstrip("/")) or "file"
    base = base.rsplit(":", 1)[-1]
    name = _FILE_NAME.sub("_", base).lstrip(".-_") or "file"
    if len(name) > 128:
        stem, ext = posixpath.splitext(name)
        name = stem[: 128 - len(ext[:16])] + ext[:16]
    return name


def _own_name(url: str, record: dict) -> str:
    """The file's own name: the URL path's last segment with an extension, a file name in the query, the record's."""
    parts = urlsplit(url)
    segment = posixpath.basename(unquote(parts.path).rstrip("/"))
    if _HAS_EXT.search(segment):
        return segment
    for _, value in parse_qsl(parts.query):
        candidate = posixpath.basename(value.rstrip("/")).rsplit(":", 1)[-1]
        if _HAS_EXT.search(candidate) and not candidate.lower().endswith((".html", ".php", ".jsp")):
            return candidate
    named = record.get("name")
    if isinstance(named, str) and named.strip():
        return named
    return segment or parts.hostname or "file"


def _media_type(name: str, record: dict) -> str | None:
    given = record.get("access_format") or record.get("content_type")
    if isinstance(given, str) and "/" in given:
        return given
    return media_type(name)


def is_data_url(value: Any) -> bool:
    """A string that is one URL in a scheme the bundle runtime can fetch."""
    if not isinstance(value, str) or len(value) > 4096 or any(c.isspace() for c in value.strip()):
        return False
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in _DATA_SCHEMES and bool(parts.netloc)


def values_urls(values: list[Any]) -> list[str]:
    """Every data URL among a row's values (a positional row has no keys to tell data from pictures)."""
    return [v.strip() for v in values if is_data_url(v)]


def _ref(url: str, record: dict) -> dict:
    name = safe_file_name(_own_name(url, record))
    ref: dict[str, Any] = {"name": name, "uri": url}
    media = _media_type(name, record)
    if media:
        ref["media_type"] = media
    if media == "inode/directory":
        ref["description"] = "CASA measurement set (a directory)"
    described = record.get("dataProductSubType") or record.get("title") or record.get("dataproduct_type")
    if isinstance(described, str) and described and "description" not in ref:
        ref["description"] = described
    return ref


def url_refs(record: dict) -> list[dict]:
    """File references for the data URLs of a record: its data keys first, then any other key holding a URL."""
    keys = [k for k in DATA_URL_KEYS if k in record]
    keys += [k for k in record if k not in DATA_URL_KEYS and str(k).lower() not in NOT_DATA_KEYS]
    refs, seen = [], set()
    for key in keys:
        value = record.get(key)
        url = value.strip() if isinstance(value, str) and is_data_url(value) else ""
        if url and url not in seen:
            seen.add(url)
            refs.append(_ref(url, record))
    return refs


def row_refs(values: list[Any]) -> list[dict]:
    """File references for the URLs in a positional row (vo_reg, samp)."""
    return [_ref(url, {}) for url in dict.fromkeys(values_urls(values))]


def _hex(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:08x}"
    if isinstance(value, str) and value.strip():
        return value.strip().lower().removeprefix("0x")
    return None


def _size(value: Any) -> int:
    """A byte count: a whole number ≥ 0, or its digits. int() alone took 1.5 as 1 and True as 1, and raised
    OverflowError (a 500) on the Infinity that Python's JSON reader accepts in an item_data string."""
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise Skip(f"Rucio record size {str(value)[:40]!r} is not a whole number of bytes")


def rucio_ref(record: dict) -> dict:
    """A file reference for a Rucio record (``GET /dids/{scope}/`` row, or a replica listing with checksums).

    ESAP's rows carry no checksums: the bundle runtime then checks a download against Rucio's own metadata.
    """
    did = record.get("did")
    scope, name = record.get("scope"), record.get("name")
    if not isinstance(did, str) or ":" not in did:
        if not (isinstance(scope, str) and scope and isinstance(name, str) and name):
            raise Skip("Rucio record has neither 'did' nor 'scope' and 'name'")
        did = f"{scope}:{name}"
    ref: dict[str, Any] = {"name": safe_file_name(did.split(":", 1)[1]), "uri": did}
    size = next((record[k] for k in ("bytes", "size", "size_in_bytes") if record.get(k) is not None), None)
    if size is not None:
        ref["size"] = _size(size)
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
