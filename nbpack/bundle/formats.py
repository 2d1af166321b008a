"""The table formats a catalog can be read from, and every name each goes by: one definition for file
suffixes (``catalog``), a create request's ``format`` and parts (``create``) and the create schema's enum
(checked equal by ``tests/unit/test_formats.py``)."""

from __future__ import annotations

__all__ = ["FORMATS", "ALIASES", "NAMES", "canonical", "from_filename"]

# The formats ``nbpack.bundle.catalog`` opens, by their canonical name.
FORMATS = ("parquet", "arrow", "csv", "tsv", "json", "jsonl", "votable")

# Other names in use for the same formats; each is also a file suffix.
ALIASES = {
    "pq": "parquet",
    "feather": "arrow",
    "ipc": "arrow",
    "ndjson": "jsonl",
    "vot": "votable",
    "xml": "votable",
}

# Every accepted name, canonical first: what a create request's "format" may say.
NAMES = FORMATS + tuple(ALIASES)


def canonical(name: str) -> str | None:
    """The canonical format for a name or alias (any case), or None when it is not a table format."""
    low = name.strip().lower()
    return low if low in FORMATS else ALIASES.get(low)


def from_filename(filename: str) -> str | None:
    """The canonical format a file name's last suffix says, or None."""
    _, dot, suffix = filename.rpartition(".")
    return canonical(suffix) if dot else None
