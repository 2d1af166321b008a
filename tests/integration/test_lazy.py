"""Lazy catalog reads (issue 13, IFACE §2 and §4) against a local Range server standing in for the files endpoint.

The same claims against the real service (gunicorn, the stored content objects) are in
tests/integration/test_lazy_service.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from nbpack.bundle import catalog
from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle, check_bundle, open_bundle
from tests.helpers import load_runtime_package, unload_runtime
from tests.lazy_helpers import CountingProxy, awkward_catalog, range_server, redirect_server, same, thin_copy

CAT = "catalogs/sources.parquet"
ROWS = 150_000


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unpacked bundle whose one catalog (22 columns, awkward values, sorted by id) spans many blocks."""
    work = tmp_path_factory.mktemp("lazy-bundle")
    table = awkward_catalog(ROWS).sort_by("source_id")
    build_bundle(BuildSpec(title="Lazy", catalogs=[CatalogInput("sources", table)]), work / "b.zip")
    with zipfile.ZipFile(work / "b.zip") as zf:
        zf.extractall(work / "full")
    return work / "full"


@pytest.fixture
def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    monkeypatch.setenv("NBPACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NBPACK_RETRY_DELAY", "0.01")
    yield load_runtime_package("nbpack_runtime_lazy")
    unload_runtime("nbpack_runtime_lazy")


@pytest.fixture
def served(built: Path, tmp_path: Path) -> Iterator[tuple[Path, CountingProxy, str]]:
    """A copy of the bundle served by a Range server behind a counting proxy: (served folder, proxy, files URL)."""
    folder = tmp_path / "served"
    shutil.copytree(built, folder)
    with range_server(folder) as url, CountingProxy(("127.0.0.1", int(url.split(":")[2].split("/")[0]))) as proxy:
        yield folder, proxy, f"http://127.0.0.1:{proxy.port}/files/tok/hid/"


def _whole(built: Path) -> pa.Table:
    return pq.read_table(built / CAT)


def _thin(rt, built: Path, tmp_path: Path, url: str):  # noqa: ANN001, ANN202
    return rt.start(str(thin_copy(built, tmp_path / "thin", url, [CAT])))


def _cache_folder(tmp_path: Path, built: Path) -> Path:
    sha = next(c["sha256"] for c in json.loads((built / "nbpack.json").read_text())["catalogs"])
    return tmp_path / "cache" / "catalogs" / sha


# ------------------------------------------------------------------------------------------- build side


def test_every_catalog_gets_block_digests_listed_in_contents(built: Path, tmp_path: Path) -> None:
    manifest = json.loads((built / "nbpack.json").read_text())
    entry = manifest["catalogs"][0]
    assert entry["blocks"] == {"size": catalog.BLOCK_SIZE, "path": CAT + ".blocks"}
    data = (built / CAT).read_bytes()
    expected = b"".join(
        hashlib.sha256(data[i : i + catalog.BLOCK_SIZE]).digest() for i in range(0, len(data), catalog.BLOCK_SIZE)
    )
    assert len(data) > 8 * catalog.BLOCK_SIZE
    assert (built / entry["blocks"]["path"]).read_bytes() == expected
    listed = {c["path"]: c for c in manifest["contents"]}
    assert listed[CAT + ".blocks"]["sha256"] == hashlib.sha256(expected).hexdigest()
    with open_bundle(built.parent / "b.zip") as bf:
        assert check_bundle(bf) == []


# ------------------------------------------------------------------------------------------- reads


def test_lazy_read_equals_the_whole_read(rt, built: Path, tmp_path: Path, served) -> None:  # noqa: ANN001
    _, proxy, url = served
    bundle = _thin(rt, built, tmp_path, url)
    table = bundle.catalog("sources")
    whole = _whole(built)
    assert same(table, whole)
    assert table.column("source_id")[5].as_py() == whole.column("source_id")[5].as_py() > 2**53
    assert table.column("mag").null_count > 0 and pc.is_nan(table.column("mag")).to_pylist().count(True) > 0
    assert str(table.schema.field("epoch").type) == "timestamp[us, tz=UTC]"
    assert proxy.bytes >= (built / CAT).stat().st_size
    # Read whole, it became a plain verified copy in the cache.
    assert (_cache_folder(tmp_path, built) / "catalog.parquet").is_file()
    df = bundle.catalog("sources", as_="pandas", columns=["source_id", "name"])
    assert df["source_id"].tolist() == whole.column("source_id").to_pylist()
    assert df["name"].tolist() == whole.column("name").to_pylist()


def test_two_of_22_columns_move_few_bytes_and_match(rt, built: Path, tmp_path: Path, served) -> None:  # noqa: ANN001
    _, proxy, url = served
    bundle = _thin(rt, built, tmp_path, url)
    cols = ["x10", "source_id"]
    table = bundle.catalog("sources", columns=cols)
    assert same(table, _whole(built).select(cols))
    size = (built / CAT).stat().st_size
    assert proxy.bytes < 0.4 * size, (proxy.bytes, size)
    assert not (_cache_folder(tmp_path, built) / "catalog.parquet").exists()
    moved, proxy.bytes, proxy.connections = proxy.bytes, 0, 0
    # The same columns again: every block is in the cache, no request at all.
    assert same(bundle.catalog("sources", columns=cols), table)
    assert (proxy.connections, proxy.bytes) == (0, 0)
    # The rest of the file: only what is missing moves, and the whole read is then checked and cached.
    assert same(bundle.catalog("sources"), _whole(built))
    assert proxy.bytes <= size - moved + catalog.BLOCK_SIZE * 4


def _blocks(start: int, length: int) -> set[int]:
    return set(range(start // catalog.BLOCK_SIZE, -(-(start + length) // catalog.BLOCK_SIZE)))


def test_a_whole_read_goes_as_concurrent_ranges_each_block_once(rt, built: Path, tmp_path: Path, served) -> None:  # noqa: ANN001
    _, proxy, url = served
    size = (built / CAT).stat().st_size
    assert same(_thin(rt, built, tmp_path, url).catalog("sources"), _whole(built))
    per = rt.readplan.RANGE_LIMIT // catalog.BLOCK_SIZE
    count = -(-size // catalog.BLOCK_SIZE)
    # One ask for a signed read (this server offers none, as a service on a local folder does), then one request
    # per RANGE_LIMIT piece (the sidecar is local).
    assert proxy.connections - 1 == -(-count // per) >= 3
    assert proxy.peak >= 2  # in flight together
    assert size <= proxy.bytes <= size + proxy.connections * 1024  # every block once, plus the response headers


def test_a_column_subset_sends_a_request_per_coalesced_run(rt, built: Path, tmp_path: Path, served) -> None:  # noqa: ANN001
    _, proxy, url = served
    cols = ["x10", "x11", "source_id"]
    assert same(_thin(rt, built, tmp_path, url).catalog("sources", columns=cols), _whole(built).select(cols))
    size = (built / CAT).stat().st_size
    md = pq.ParquetFile(built / CAT).metadata
    names = md.schema.to_arrow_schema().names
    plan: set[int] = set()
    for g in range(md.num_row_groups):
        for j in (names.index(c) for c in cols):
            chunk = md.row_group(g).column(j)
            start = min(chunk.data_page_offset, chunk.dictionary_page_offset or chunk.data_page_offset)
            plan |= _blocks(start, chunk.total_compressed_size)
    footer = _blocks(size - 64 * 1024, 64 * 1024)
    runs = rt.readplan.coalesce(sorted(plan - footer), catalog.BLOCK_SIZE)
    # x10 and x11 are neighbours: their chunks of one row group are one run, source_id another.
    assert len(runs) < len(plan - footer)
    assert proxy.connections == 2 + len(runs)  # the signed-read ask (none offered), the footer, each run once
    assert proxy.peak >= 2


def test_a_filter_reads_only_the_row_groups_it_may_keep(rt, built: Path, tmp_path: Path, served) -> None:  # noqa: ANN001
    _, proxy, url = served
    whole = _whole(built)
    first = whole.column("source_id")[10].as_py()
    flt = [("source_id", "<=", first)]
    table = _thin(rt, built, tmp_path, url).catalog("sources", columns=["name"], filter=flt)
    assert table.column_names == ["name"] and table.num_rows == 11
    assert same(table, pq.read_table(built / CAT, columns=["name", "source_id"], filters=flt).select(["name"]))
    md = pq.ParquetFile(built / CAT).metadata
    names = [md.schema.column(j).name for j in range(md.num_columns)]
    wanted = [names.index("name"), names.index("source_id")]
    chunks = [sum(md.row_group(g).column(j).total_compressed_size for j in wanted) for g in range(md.num_row_groups)]
    # Only the first row group may hold the rows: its two chunks, rounded out to blocks, plus the footer's block.
    assert md.num_row_groups > 1 and proxy.bytes <= chunks[0] + 5 * catalog.BLOCK_SIZE, (proxy.bytes, chunks)
    assert proxy.bytes < sum(chunks), (proxy.bytes, chunks)  # less than those columns of every row group


def test_a_local_file_wins_over_the_remote(rt, built: Path, tmp_path: Path, served) -> None:  # noqa: ANN001
    _, proxy, url = served
    folder = thin_copy(built, tmp_path / "thin", url, [])
    assert same(rt.start(str(folder)).catalog("sources", columns=["mag"]), _whole(built).select(["mag"]))
    assert proxy.connections == 0


# ------------------------------------------------------------------------------------------- refusals


def _block_of_column(built: Path, column: str) -> int:
    md = pq.ParquetFile(built / CAT).metadata
    j = md.schema.to_arrow_schema().names.index(column)
    chunk = md.row_group(1).column(j)
    return (chunk.data_page_offset + chunk.total_compressed_size // 2) // catalog.BLOCK_SIZE


def test_a_damaged_catalog_is_refused_on_a_partial_read(rt, built: Path, tmp_path: Path, served) -> None:  # noqa: ANN001
    folder, _, url = served
    block = _block_of_column(built, "x05")
    path = folder / CAT
    data = bytearray(path.read_bytes())
    data[block * catalog.BLOCK_SIZE + 100] ^= 0xFF
    path.write_bytes(bytes(data))
    bundle = _thin(rt, built, tmp_path, url)
    with pytest.raises(rt.ChecksumMismatch, match=f"block {block} "):
        bundle.catalog("sources", columns=["x05"])
    cache = _cache_folder(tmp_path, built)
    log = (cache / f"blocks-{catalog.BLOCK_SIZE}.done").read_bytes()
    assert block not in struct.unpack(f"<{len(log) // 4}I", log)
    assert not (cache / "catalog.parquet").exists()
    with pytest.raises(rt.ChecksumMismatch):
        bundle.catalog("sources", columns=["x05"])  # refused again: nothing bad was cached


def test_damaged_block_digests_are_refused(rt, built: Path, tmp_path: Path, served) -> None:  # noqa: ANN001
    folder, proxy, url = served
    thin = thin_copy(built, tmp_path / "thin", url, [CAT, CAT + ".blocks"])
    sidecar = folder / (CAT + ".blocks")
    sidecar.write_bytes(b"\0" * 32 + sidecar.read_bytes()[32:])
    with pytest.raises(rt.ChecksumMismatch, match="blocks: sha256 expected"):
        rt.start(str(thin)).catalog("sources", columns=["mag"])
    assert proxy.connections == 1  # the sidecar only: nothing of the catalog was read


def test_a_redirect_is_refused(rt, built: Path, tmp_path: Path, served) -> None:  # noqa: ANN001
    _, proxy, url = served
    with redirect_server(url) as redirecting:
        with pytest.raises(rt.FetchError, match="302 .*redirect"):
            _thin(rt, built, tmp_path, redirecting + "files/tok/hid/").catalog("sources", columns=["mag"])
    assert proxy.connections == 0


def test_an_interrupted_read_resumes(rt, built: Path, tmp_path: Path, served) -> None:  # noqa: ANN001
    _, proxy, url = served
    size = (built / CAT).stat().st_size
    proxy.cut_after = size // 2
    bundle = _thin(rt, built, tmp_path, url)
    with pytest.raises(rt.FetchError, match="failed after"):
        bundle.catalog("sources")
    log = (_cache_folder(tmp_path, built) / f"blocks-{catalog.BLOCK_SIZE}.done").read_bytes()
    kept = len(log) // 4
    assert kept >= 2
    proxy.reset()
    assert same(bundle.catalog("sources"), _whole(built))
    assert proxy.bytes <= size - (kept - 1) * catalog.BLOCK_SIZE


def test_a_bundle_without_block_digests_is_read_whole_and_checked(rt, built: Path, tmp_path: Path, served) -> None:  # noqa: ANN001
    folder, proxy, url = served
    thin = thin_copy(built, tmp_path / "thin", url, [CAT])
    manifest = json.loads((thin / "nbpack.json").read_text())
    del manifest["catalogs"][0]["blocks"]
    (thin / "nbpack.json").write_text(json.dumps(manifest))
    table = rt.start(str(thin)).catalog("sources", columns=["mag"])
    assert same(table, _whole(built).select(["mag"]))
    assert proxy.bytes >= (built / CAT).stat().st_size
    # The same on a damaged copy, in a fresh cache: the whole-file sha256 refuses it.
    shutil.rmtree(tmp_path / "cache")
    path = folder / CAT
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    bundle = load_runtime_package("nbpack_runtime_lazy").start(str(thin))
    with pytest.raises(Exception, match="sha256 expected"):
        bundle.catalog("sources", columns=["mag"])
    assert not list((tmp_path / "cache").rglob("catalog.parquet"))


def test_two_readers_at_once_share_the_cache(rt, built: Path, tmp_path: Path, served) -> None:  # noqa: ANN001
    import threading

    _, _, url = served
    folder = thin_copy(built, tmp_path / "thin", url, [CAT])
    manifest = json.loads((folder / "nbpack.json").read_text())
    remote = json.loads((folder / "nbpack.remote.json").read_text())
    results: dict[int, object] = {}

    def read(i: int) -> None:
        try:
            results[i] = rt.Bundle(folder, manifest, remote).catalog("sources", columns=None if i else ["mag"])
        except Exception as err:  # noqa: BLE001 - reported below
            results[i] = err

    threads = [threading.Thread(target=read, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    whole = _whole(built)
    assert same(results[0], whole.select(["mag"])) and same(results[1], whole), results
    assert same(rt.Bundle(folder, manifest, remote).catalog("sources"), whole)


def test_the_decode_reads_this_readers_part_not_whatever_bears_its_name(
    rt,  # noqa: ANN001
    built: Path,
    tmp_path: Path,
    served,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two readers that both find no part may each create one: the second replaces the first's under the name. The
    # first keeps writing its verified blocks to its own descriptor, so pyarrow must read through that descriptor
    # (a reader opening the name would decode the other's still-empty part: zeros).
    _, _, url = served
    real_plan = rt.lazy._Blocks._plan

    def plan_then_replaced(self, *args):  # noqa: ANN001, ANN002, ANN202
        plan = real_plan(self, *args)
        fresh = self.part.with_name("fresh-part")
        with open(fresh, "wb") as fh:
            fh.truncate(self.size)
        fresh.replace(self.part)
        return plan

    monkeypatch.setattr(rt.lazy._Blocks, "_plan", plan_then_replaced)
    cols = ["x10", "source_id"]
    assert same(_thin(rt, built, tmp_path, url).catalog("sources", columns=cols), _whole(built).select(cols))


def test_an_unknown_column_is_named_before_any_column_is_fetched(rt, built: Path, tmp_path: Path, served) -> None:  # noqa: ANN001
    _, proxy, url = served
    bundle = _thin(rt, built, tmp_path, url)
    with pytest.raises(rt.RuntimeProblem, match="no column 'nope'; the catalog has: source_id, mag"):
        bundle.catalog("sources", columns=["mag", "nope"])
    assert proxy.bytes <= 2 * catalog.BLOCK_SIZE + 4096  # the footer only: its last 64 KiB may straddle two blocks
    local = rt.start(str(thin_copy(built, tmp_path / "full-copy", url, [])))
    with pytest.raises(rt.RuntimeProblem, match="no column 'nope'"):
        local.catalog("sources", columns=["nope"])


def _plant(rt, url: str, size: int, signed_url: str, offset: int = 0) -> None:  # noqa: ANN001
    """A signed read of the catalog as if the service had handed it out (pointing wherever the test says)."""
    far = time.monotonic() + 3600
    grant = rt.signed.Grant(signed_url, offset, size, size + offset, far)
    rt.signed._grants[url + CAT] = (grant, far)


def test_storage_out_of_reach_falls_back_to_the_files_url(rt, built: Path, tmp_path: Path, served) -> None:  # noqa: ANN001
    _, proxy, url = served
    size = (built / CAT).stat().st_size
    _plant(rt, url, size, "http://127.0.0.1:1/bucket/content/x?X-Amz-Signature=0")  # nothing listens on port 1
    cols = ["x03", "x04"]
    assert same(_thin(rt, built, tmp_path, url).catalog("sources", columns=cols), _whole(built).select(cols))
    assert proxy.bytes > 0.05 * size  # read through the files URL instead


def test_a_signed_answer_not_of_the_asked_range_is_not_taken(rt, built: Path, tmp_path: Path, served) -> None:  # noqa: ANN001
    folder, proxy, url = served
    size = (built / CAT).stat().st_size
    with range_server(folder) as other, CountingProxy(("127.0.0.1", int(other.split(":")[2].split("/")[0]))) as store:
        # The "object" claims 30 bytes of header before the member: the answer's Content-Range total (the bare file's
        # size) is not the object's, so no byte of it is taken and the read goes through the files URL.
        _plant(rt, url, size, f"http://127.0.0.1:{store.port}/files/tok/hid/{CAT}", offset=30)
        cols = ["x05"]
        assert same(_thin(rt, built, tmp_path, url).catalog("sources", columns=cols), _whole(built).select(cols))
        assert store.connections >= 1
    assert proxy.bytes > 0.05 * size


def test_a_bad_block_inside_a_piece_keeps_the_checked_ones_before_it_only(
    rt, built: Path, tmp_path: Path, served
) -> None:  # noqa: ANN001
    # A range's body is read in pieces of several blocks (lazy.PIECE) and checked block by block: block 6 is the
    # third of the piece 4..7 of the first range. 4 and 5 are checked and kept; 6 is refused and nothing after it in
    # its range is written or logged.
    folder, _, url = served
    per = rt.lazy.PIECE // catalog.BLOCK_SIZE
    assert per == 4 and rt.readplan.RANGE_LIMIT // catalog.BLOCK_SIZE > 8
    path = folder / CAT
    data = bytearray(path.read_bytes())
    data[6 * catalog.BLOCK_SIZE + 100] ^= 0xFF
    path.write_bytes(bytes(data))
    bundle = _thin(rt, built, tmp_path, url)
    with pytest.raises(rt.ChecksumMismatch, match="block 6 "):
        bundle.catalog("sources")
    log = (_cache_folder(tmp_path, built) / f"blocks-{catalog.BLOCK_SIZE}.done").read_bytes()
    logged = set(struct.unpack(f"<{len(log) // 4}I", log))
    assert {0, 1, 2, 3, 4, 5} <= logged
    assert not logged & set(range(6, rt.readplan.RANGE_LIMIT // catalog.BLOCK_SIZE))
    part = (_cache_folder(tmp_path, built) / "catalog.parquet.part").read_bytes()
    assert part[: 6 * catalog.BLOCK_SIZE] == bytes(data[: 6 * catalog.BLOCK_SIZE])
    assert part[6 * catalog.BLOCK_SIZE : 8 * catalog.BLOCK_SIZE] == bytes(2 * catalog.BLOCK_SIZE)  # never written
    with pytest.raises(rt.ChecksumMismatch, match="block 6 "):
        bundle.catalog("sources")  # refused again: nothing bad was cached


def test_a_whole_read_is_decoded_from_a_memory_map_of_the_cache(
    rt,
    built: Path,
    tmp_path: Path,
    served,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    # pyarrow's default read copies every column chunk into fresh buffers first (2x the decode's CPU at 1 GiB).
    seen: list[tuple[str, object]] = []
    real = pq.read_table

    def spy(source, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        seen.append((str(source), kwargs.get("memory_map")))
        return real(source, *args, **kwargs)

    monkeypatch.setattr(pq, "read_table", spy)
    _, _, url = served
    bundle = _thin(rt, built, tmp_path, url)
    table = bundle.catalog("sources")
    assert same(bundle.catalog("sources", columns=["mag"]), _whole(built).select(["mag"]))  # the cached copy
    cached = str(_cache_folder(tmp_path, built) / "catalog.parquet")
    assert [s for s in seen if s[0] == cached] == [(cached, True), (cached, True)]
    shutil.rmtree(tmp_path / "cache")  # the mapped file unlinked: the table still reads (the map holds the inode)
    assert same(table, _whole(built))
