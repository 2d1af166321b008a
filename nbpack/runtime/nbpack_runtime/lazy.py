"""Lazy catalog reads: a catalog the folder lacks is read by HTTP Range, from the object store through a signed URL the
service hands out (``signed``), else from the service's files URL.

Only what is needed crosses the network: the Parquet footer first, then the column chunks of the wanted columns and row
groups, always as whole blocks of the catalog's block size. The missing blocks are coalesced into ranges as pyarrow's
own S3 reader does (near runs merged, long ones split: ``readplan`` says which blocks, in which ranges) and the ranges
are requested concurrently, at most ``IN_FLIGHT`` at once. Each block is checked once, against its sha256 in the
catalog's ``.blocks`` sidecar (itself checked against the manifest's ``contents``), before it is written to the cache,
so a partial read is verified without the rest of the file, and a file whose every block verified is the file the
manifest names. Verified blocks stay in the cache (``NBPACK_CACHE``/catalogs/<sha256>/): a read that is cut off resumes,
and a read of blocks already there makes no request. Once every block is there the file becomes a plain cached copy.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import os
import struct
import threading
from pathlib import Path
from typing import Any

from .base import with_retries
from .checksums import checked_checksums
from .display import Progress
from .errors import ChecksumMismatch, RuntimeProblem
from .ranges import fetch_whole, get_all, read_into, shown
from .readplan import blocks_of, coalesce, column_blocks, footer_guess, row_groups
from .refs import cache_dir
from .remote import member_url
from .signed import Source

_DIGEST = 32
_PWRITE = hasattr(os, "pwrite") and hasattr(os, "pread")  # POSIX; elsewhere a seek and a write under the lock
IN_FLIGHT = 8  # Range requests at once: the size of pyarrow's S3 I/O pool (which ranges: ``readplan``)
# A range's body is read in pieces of this many bytes (whole blocks) into one buffer per range, each piece's blocks
# checked as slices of it, then written with one pwrite and logged with one write (4x fewer calls and no bytes object
# per block; the fetch's CPU is sha256 and the socket's copy: bench/README.md, "lazy3").
PIECE = 1 << 20


def wanted(columns: list[str] | None, filters: Any) -> tuple[list[str] | None, Any]:
    """The columns to read (the asked ones plus those the filter names; None = all) and the filter expression."""
    if filters is None:
        return (list(columns) if columns is not None else None), None
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if isinstance(filters, pc.Expression):
        return None, filters  # which fields an expression names is not public API: read them all
    conjunctions = filters if filters and isinstance(filters[0], list) else [filters]
    named = [term[0] for conj in conjunctions for term in conj]
    expr = pq.filters_to_expression(filters)
    if columns is None:
        return None, expr
    return list(dict.fromkeys([*columns, *named])), expr


def finish(table: Any, columns: list[str] | None, expr: Any) -> Any:
    """The rows the filter keeps, the columns asked for, in their order."""
    if expr is not None:
        table = table.filter(expr)
    return table if columns is None else table.select(list(columns))


def read_local(path: Path, columns: list[str] | None, filters: Any, mapped: bool = False) -> Any:
    """A catalog file on disk, subset as asked; ``mapped``: decoded from a memory map (for the cache's own files)."""
    import pyarrow.parquet as pq

    needed, expr = wanted(columns, filters)
    _check_columns(pq.read_schema(path).names, needed)
    return finish(pq.read_table(path, columns=needed, memory_map=mapped), columns, expr)


def _check_columns(names: list[str], needed: list[str] | None) -> None:
    unknown = [c for c in needed or [] if c not in names]
    if unknown:
        raise RuntimeProblem(f"no column {', '.join(map(repr, unknown))}; the catalog has: {', '.join(names)}")


def read_lazy(entry: dict, manifest: dict, remote: dict, root: Path, columns: list[str] | None, filters: Any) -> Any:
    """Read catalog ``entry`` from the files URL of ``remote`` (or the cache), subset as asked; verified."""
    name, size = entry["name"], int(entry["bytes"])
    sha = checked_checksums(f"catalog {name!r}", {"sha256": entry["sha256"]}).get("sha256")
    if not sha:
        raise RuntimeProblem(f"catalog {name!r}: the manifest gives no sha256")
    folder = cache_dir() / "catalogs" / sha
    complete = folder / "catalog.parquet"
    if complete.is_file():
        return read_local(complete, columns, filters, mapped=True)
    folder.mkdir(parents=True, exist_ok=True)
    url = member_url(remote, entry["path"])
    blocks = entry.get("blocks")
    if not blocks:
        # A bundle built before block digests: only the whole file can be verified, so it is fetched whole.
        fetch_whole(f"catalog {name}", url, size, sha, folder / "catalog.parquet")
        return read_local(complete, columns, filters, mapped=True)
    digests = _digests(entry, manifest, remote, root, folder)
    cache = _Blocks(name, url, size, int(blocks["size"]), digests, folder)
    try:
        return cache.read(columns, filters)
    finally:
        cache.close()


def _digests(entry: dict, manifest: dict, remote: dict, root: Path, folder: Path) -> bytes:
    """The catalog's block digests: the sidecar from the folder, the cache or the files URL, checked."""
    path, block = entry["blocks"]["path"], entry["blocks"]["size"]
    if not isinstance(block, int) or not 4096 <= block <= 1 << 30:
        raise RuntimeProblem(f"catalog {entry['name']!r}: block size {block!r} is out of range")
    length = _DIGEST * -(-int(entry["bytes"]) // block)
    cached = folder / f"blocks-{block}.sha256"
    if cached.is_file() and cached.stat().st_size == length:
        return cached.read_bytes()  # content-addressed and checked when stored
    listed = {c["path"]: c for c in manifest.get("contents", [])}.get(path)
    if listed is None or listed.get("bytes") != length:
        raise RuntimeProblem(f"catalog {entry['name']!r}: {path} is not in contents with {length} bytes")
    url, local = member_url(remote, path), root / path  # member_url refuses a path leaving the folder
    data = local.read_bytes() if local.is_file() else get_all(url, length)
    got = hashlib.sha256(data).hexdigest()
    if got != listed["sha256"] or len(data) != length:
        raise ChecksumMismatch(f"{path}: sha256 expected {listed['sha256']}, got {got}")
    tmp = cached.with_name(f".{cached.name}.{os.getpid()}-{threading.get_ident()}")  # two kernels or threads
    tmp.write_bytes(data)
    os.replace(tmp, cached)
    return data


class _Blocks:
    """One catalog's verified blocks in the cache: a sparse file of the catalog's size and a log of block numbers.

    A block is written to the file, then its number appended to the log: the log never names a block whose bytes
    are not there, so an interrupted read leaves only verified blocks behind.
    """

    def __init__(self, name: str, url: str, size: int, block: int, digests: bytes, folder: Path) -> None:
        self.name, self.url, self.size, self.block, self.digests = name, url, size, block, digests
        self.count = -(-size // block)
        self.part = folder / "catalog.parquet.part"
        self.log = folder / f"blocks-{block}.done"
        if not self.part.is_file() or self.part.stat().st_size != size:
            tmp = folder / f".part-{os.getpid()}-{threading.get_ident()}"
            with open(tmp, "wb") as fh:
                fh.truncate(size)
            try:
                if self.part.is_file():
                    os.replace(tmp, self.part)  # a part of another size is no part of this catalog
                else:
                    os.link(tmp, self.part)  # never replaces the part another kernel has just made and is filling
                for log in folder.glob("blocks-*.done"):
                    log.unlink(missing_ok=True)
            except FileExistsError:
                pass
            tmp.unlink(missing_ok=True)
        raw = self.log.read_bytes() if self.log.is_file() else b""
        whole = len(raw) // 4
        self.done = {b for b in struct.unpack(f"<{whole}I", raw[: 4 * whole]) if b < self.count}
        self.lock = threading.Lock()
        # Unbuffered: each write goes straight to the file (nothing to flush). Where pwrite/pread exist (POSIX) the
        # ranges' threads write their blocks at their offsets at once, and the lock guards only the log.
        self.fh = open(self.part, "r+b", buffering=0)  # noqa: SIM115 - closed by close()
        self.logfh = open(self.log, "ab", buffering=0)  # noqa: SIM115
        self.moved = 0  # bytes fetched by this reader (tests and the progress line)
        self.requests = 0  # Range requests this reader sent (tests)
        self.source = Source(url, size)  # straight to storage with a signed URL when the service offers one

    def close(self) -> None:
        self.fh.close()
        self.logfh.close()

    def span(self, b: int) -> tuple[int, int]:
        start = b * self.block
        return start, min(self.block, self.size - start)

    def blocks_of(self, start: int, end: int) -> range:
        """The block numbers that bytes ``start..end`` (exclusive end) fall in."""
        return blocks_of(start, end, self.block)

    def ensure(self, blocks: set[int] | range, label: str | None = None) -> None:
        """Fetch the given blocks not yet verified: coalesced ranges, up to IN_FLIGHT at once, with retries."""
        if not set(blocks) - self.done:
            return
        total = sum(self.span(b)[1] for b in set(blocks) - self.done)
        bar = Progress(label, total) if label else None
        start = self.moved

        def attempt() -> None:
            # Each try asks only for what is still missing; a range that failed leaves its verified blocks behind.
            runs = coalesce(sorted(set(blocks) - self.done), self.block, self.done)
            if len(runs) == 1:
                self._fetch_run(*runs[0], bar, start)
                return
            with concurrent.futures.ThreadPoolExecutor(min(IN_FLIGHT, len(runs))) as pool:
                futures = [pool.submit(self._fetch_run, first, last, bar, start) for first, last in runs]
                errors = [f.exception() for f in futures]
            # A final failure (a checksum, a 4xx: RuntimeProblem) outranks a transient one: retrying cannot mend it.
            failed = sorted((e for e in errors if e is not None), key=lambda e: not isinstance(e, RuntimeProblem))
            if failed:
                raise failed[0]

        with_retries(shown(self.url), attempt)
        if bar:
            bar.update(self.moved - start, final=True)

    def _fetch_run(self, first: int, last: int, bar: Progress | None, base: int) -> None:
        start = self.span(first)[0]
        end = sum(self.span(last)) - 1
        with self.lock:
            self.requests += 1
        resp, at = self.source.open(start, end)
        per = max(1, PIECE // self.block)
        buffer = memoryview(bytearray(per * self.block))
        with resp:
            b = at // self.block  # a 200 answer starts at block 0
            while b <= last:
                n = min(per, last + 1 - b)
                piece = buffer[: min(n * self.block, self.size - b * self.block)]
                read_into(resp, piece)
                if b + n > first:
                    skip = max(0, first - b)
                    # hashlib releases the GIL: the other ranges keep coming meanwhile
                    self._store(b + skip, piece[skip * self.block :])
                    if bar:
                        with self.lock:
                            bar.update(self.moved - base)
                b += n

    def _store(self, b: int, data: bytes | memoryview) -> None:
        """Check blocks ``b, b+1, …`` (``data`` holds them in a row) against their digests, then write and log
        the ones not yet here: the blocks before a bad one are kept, and the bad one raises ChecksumMismatch."""
        view, run, size = memoryview(data), b, self.block  # run: the first checked block not yet written
        for n in range(b, b + -(-len(view) // size)):
            fresh = n not in self.done
            digest = self.digests[_DIGEST * n : _DIGEST * (n + 1)]
            if fresh and hashlib.sha256(view[(n - b) * size : (n - b + 1) * size]).digest() == digest:
                continue
            if n > run:
                self._write(range(run, n), view[(run - b) * size : (n - b) * size])
            run = n + 1
            if fresh:
                first, length = self.span(n)
                raise ChecksumMismatch(
                    f"catalog {self.name!r}: block {n} (bytes {first}-{first + length - 1}) does not match its "
                    "sha256 in the block digests; the stored catalog is damaged"
                )
        end = b + -(-len(view) // size)
        if end > run:
            self._write(range(run, end), view[(run - b) * size :])

    def _write(self, blocks: range, data: memoryview) -> None:
        """Write checked blocks (consecutive, ``data`` their bytes) to the part, then name them in the log."""
        at = blocks[0] * self.block
        if _PWRITE:
            view = data
            while view:  # a regular file takes it whole; the loop only guards against a short write
                written = os.pwrite(self.fh.fileno(), view, at)
                view, at = view[written:], at + written
        else:
            with self.lock:
                self.fh.seek(at)
                self.fh.write(data)
        with self.lock:  # after the bytes: the log never names a block not there
            self.logfh.write(struct.pack(f"<{len(blocks)}I", *blocks))
            self.done.update(blocks)
            self.moved += len(data)

    def pread(self, offset: int, n: int) -> bytes:
        """Bytes of the catalog, fetching (verified) any block they touch that is not there yet."""
        self.ensure(self.blocks_of(offset, offset + n))
        if _PWRITE:
            return os.pread(self.fh.fileno(), n, offset)
        with self.lock:
            self.fh.seek(offset)
            return self.fh.read(n)

    def read(self, columns: list[str] | None, filters: Any) -> Any:
        """Footer first, then the column chunks needed; the table subset as asked."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        needed, expr = wanted(columns, filters)
        if needed is None and expr is None:
            self.ensure(range(self.count), label=f"catalog {self.name}")  # in order: the whole sha256 as it comes
        self.ensure(self.blocks_of(footer_guess(self.size), self.size))
        footer = struct.unpack("<I", self.pread(self.size - 8, 4))[0] if self.size >= 12 else 0
        self.ensure(self.blocks_of(max(0, self.size - 8 - footer), self.size))
        # From here pyarrow reads the cache file itself: the footer (its blocks are verified, and pyarrow's first read
        # is the same last 64 KiB) and then only the column chunks of the plan, whose blocks are verified before
        # the decode. Native reads, decoded on pyarrow's threads, with no Python call per read in between.
        mapped = self._mapped()
        with pa.BufferReader(mapped) as source:
            pf = pq.ParquetFile(source)
            _check_columns(pf.schema_arrow.names, needed)
            groups = row_groups(pf, mapped, expr)
            if needed is None and expr is None:
                plan: set[int] | range = range(self.count)
            else:
                plan = self._plan(pf, needed, groups)
            self.ensure(plan, label=f"catalog {self.name}")
            if len(self.done) < self.count:
                table = pf.read_row_groups(groups, columns=needed) if groups else pf.schema_arrow.empty_table()
                return finish(table, columns, expr)
        return finish(self._promote(needed), columns, expr)  # closed first: the part is renamed

    def _plan(self, pf: Any, needed: list[str] | None, groups: list[int]) -> set[int]:
        """The blocks holding the column chunks of ``needed`` columns in ``groups``."""
        return column_blocks(pf, needed, groups, self.block, self.size)

    def _mapped(self) -> Any:
        """The cache file as pyarrow reads it: a memory map of this reader's own descriptor, not of the name (a
        reader that found no part may have put a fresh one there meanwhile), so pyarrow reads the verified blocks
        natively, without a copy or a Python call per read."""
        import mmap

        import pyarrow as pa

        if not self.size:
            return pa.py_buffer(b"")  # mmap refuses an empty file; pyarrow then says it is no Parquet file
        return pa.py_buffer(mmap.mmap(self.fh.fileno(), self.size, access=mmap.ACCESS_READ))

    def _promote(self, needed: list[str] | None) -> Any:
        """Every block is here, each verified against its digest, so the file is the one whose sha256 the manifest
        gives (the sidecar that lists the digests is checked against the manifest): keep it as the copy, read it."""
        import pyarrow.parquet as pq

        complete = self.part.with_name("catalog.parquet")
        with contextlib.suppress(FileNotFoundError):  # another reader may have completed it first
            os.replace(self.part, complete)
        self.log.unlink(missing_ok=True)
        # Decoded from a memory map: pyarrow's default reads every column chunk into fresh buffers first (a copy of
        # the file; standalone 3.4-3.9 vs 6.5-14.5 s CPU at 1 GiB, bench/README.md, "lazy3"). The file is the cache's
        # own, never rewritten in place (a new copy is renamed over it), so the map stays valid under the table.
        return pq.read_table(complete, columns=needed, memory_map=True)
