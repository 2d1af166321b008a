"""The read plan of a lazy catalog read: which blocks of a catalog to fetch, and in which Range requests.

Decided from the catalog's size, its block size and its Parquet footer alone, before a column's byte moves: where
the footer lies (a first guess, then the length the file states), which row groups a filter may keep, which blocks
hold the column chunks of the wanted columns in those row groups, and how the missing blocks are grouped into Range
requests (coalesced as pyarrow's own S3 reader does). ``lazy`` fetches, verifies and caches what this plans; the
plan decides only how much moves, never what is trusted (every block is checked against its digest however it came).
"""

from __future__ import annotations

from typing import Any

__all__ = ["HOLE_LIMIT", "RANGE_LIMIT", "blocks_of", "coalesce", "column_blocks", "footer_guess", "row_groups"]

_FOOTER_GUESS = 64 << 10  # pyarrow's first footer read; a big file's is 1/2048 of it (a footer grows with it)
# Coalescing, in bytes, as pyarrow's CacheOptions: runs whose hole is at most HOLE_LIMIT are merged (with 256 KiB
# blocks that is adjacent runs only: a hole of one block is 32x pyarrow's, and a partial read is judged by the bytes
# it moves), and a run is cut at RANGE_LIMIT (pyarrow: 32 MiB; smaller here so a whole read goes IN_FLIGHT ranges
# at a time instead of one stream).
HOLE_LIMIT = 8 << 10
RANGE_LIMIT = 8 << 20


def blocks_of(start: int, end: int, block: int) -> range:
    """The numbers of the ``block``-byte blocks that bytes ``start..end`` (exclusive end) fall in."""
    return range(start // block, -(-end // block)) if end > start else range(0)


def footer_guess(size: int) -> int:
    """Where the first read of a ``size``-byte catalog starts: the last 64 KiB (pyarrow's first footer read), or the
    last 1/2048 of a file over 128 MiB (a footer grows with the row groups, ~330 KB at 1 GiB, and a guess short of
    it costs a second range in series before the plan can be made)."""
    return max(0, size - max(_FOOTER_GUESS, size >> 11))


def coalesce(blocks: list[int], block: int, have: frozenset[int] | set[int] = frozenset()) -> list[tuple[int, int]]:
    """Sorted block numbers → (first, last) of the Range requests that fetch them: runs whose gap is at most
    HOLE_LIMIT bytes, none of it in ``have`` (blocks already cached), are merged (the gap's blocks come too, and are
    kept), and none spans more than RANGE_LIMIT bytes."""
    hole, limit = HOLE_LIMIT // block, max(1, RANGE_LIMIT // block)
    runs: list[tuple[int, int]] = []
    for b in blocks:
        gap = range(runs[-1][1] + 1, b) if runs else range(0)
        if runs and len(gap) <= hole and b - runs[-1][0] < limit and not any(g in have for g in gap):
            runs[-1] = (runs[-1][0], b)
        else:
            runs.append((b, b))
    return runs


def row_groups(pf: Any, mapped: Any, expr: Any) -> list[int]:
    """The row groups of ``pf`` the filter ``expr`` may keep (Parquet statistics from the footer: only the footer of
    ``mapped``, the catalog's bytes, is read, and its blocks are verified by then)."""
    groups = list(range(pf.metadata.num_row_groups))
    if expr is None or not groups:
        return groups
    import pyarrow.dataset as ds

    fragment = ds.ParquetFileFormat().make_fragment(mapped)
    return sorted(rg.id for piece in fragment.split_by_row_group(expr) for rg in piece.row_groups)


def column_blocks(pf: Any, needed: list[str] | None, groups: list[int], block: int, size: int) -> set[int]:
    """The blocks of a ``size``-byte catalog (``pf``, its footer parsed) holding the column chunks of ``needed``
    columns (None: all) in row groups ``groups``."""
    names = pf.schema_arrow.names
    leaf_owner = [name for name, f in zip(names, pf.schema_arrow, strict=True) for _ in range(_leaves(f.type))]
    md = pf.metadata
    # pyarrow reads up to 100 bytes past a chunk written by parquet-mr before 1.2.9 (PARQUET-816: its size left
    # out the dictionary page header): those bytes are decoded too, so their block must be verified as well.
    pad = 100 if (md.created_by or "").startswith("parquet-mr") else 0
    if len(leaf_owner) != md.num_columns:
        leaf_owner = [None] * md.num_columns  # unexpected layout: fetch every column chunk
    plan: set[int] = set()
    for g in groups:
        rg = md.row_group(g)
        for j in range(rg.num_columns):
            if needed is not None and leaf_owner[j] is not None and leaf_owner[j] not in needed:
                continue
            chunk = rg.column(j)
            start = chunk.data_page_offset
            if chunk.has_dictionary_page and chunk.dictionary_page_offset:
                start = min(start, chunk.dictionary_page_offset)
            plan.update(blocks_of(start, min(size, start + chunk.total_compressed_size + pad), block))
    return plan


def _leaves(t: Any) -> int:
    """How many Parquet leaf columns an Arrow type is stored as."""
    import pyarrow as pa

    if pa.types.is_struct(t):
        return sum(_leaves(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_map(t):
        return _leaves(t.key_type) + _leaves(t.item_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _leaves(t.value_type)
    return 1
