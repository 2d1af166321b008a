"""Lazy catalog reads through the real service: gunicorn serving ``/files/<git token>/<hid>/<path>`` from its
storage (a local folder, and SeaweedFS), the runtime reading by HTTP Range through a byte-counting proxy.
"""

from __future__ import annotations

import json
import secrets
import shutil
import struct
import urllib.parse
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from nbpack.bundle import catalog
from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from nbpack.client import Client
from tests.fixtures.service import ServiceProcess, service_env
from tests.helpers import load_runtime_package, unload_runtime
from tests.lazy_helpers import CountingProxy, awkward_catalog, redirect_server, same, thin_copy

CAT = "catalogs/sources.parquet"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle zip whose one catalog has 22 awkward columns over ~20 blocks, and its unpacked folder beside it."""
    work = tmp_path_factory.mktemp("lazy-service")
    build_bundle(
        BuildSpec(title="Lazy service", catalogs=[CatalogInput("sources", awkward_catalog(120_000))]), work / "b.zip"
    )
    with zipfile.ZipFile(work / "b.zip") as zf:
        zf.extractall(work / "full")
    return work / "b.zip"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, built: Path) -> Iterator[tuple[ServiceProcess, str]]:
    """One gunicorn service on a local folder holding the bundle: (service, files prefix of its handle)."""
    work = tmp_path_factory.mktemp("lazy-service-store")
    key = secrets.token_urlsafe(12)
    svc = ServiceProcess(service_env(str(work / "store"), key, cache_dir=str(work / "cache")), work / "log").start()
    try:
        created = Client(svc.url, key).push(built)
        yield svc, created["links"]["files"]
    finally:
        svc.stop()


@pytest.fixture
def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    monkeypatch.setenv("NBPACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NBPACK_RETRY_DELAY", "0.01")
    yield load_runtime_package("nbpack_runtime_lazy_svc")
    unload_runtime("nbpack_runtime_lazy_svc")


def _through(proxy: CountingProxy, files: str) -> str:
    """The files prefix with the proxy's port in place of the service's."""
    parts = urllib.parse.urlsplit(files)
    return parts._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()


def _proxy(svc: ServiceProcess) -> CountingProxy:
    return CountingProxy(("127.0.0.1", svc.port))


def _whole(built: Path):  # noqa: ANN202
    return pq.read_table(built.parent / "full" / CAT)


def test_lazy_reads_through_the_service(rt, built: Path, service, tmp_path: Path) -> None:  # noqa: ANN001
    svc, files = service
    full = built.parent / "full"
    size = (full / CAT).stat().st_size
    with _proxy(svc) as proxy:
        # The block digests are left out too: they come through the files URL, checked against the manifest.
        thin = thin_copy(full, tmp_path / "thin", _through(proxy, files), [CAT, CAT + ".blocks"])
        bundle = rt.start(str(thin))
        cols = ["x07", "x08"]
        part = bundle.catalog("sources", columns=cols)
        assert same(part, _whole(built).select(cols))
        assert proxy.bytes < 0.4 * size, (proxy.bytes, size)
        two = proxy.bytes
        proxy.reset()
        assert same(bundle.catalog("sources", columns=cols), part)
        assert (proxy.connections, proxy.bytes) == (0, 0)  # served from the cache
        whole = bundle.catalog("sources")
        assert same(whole, _whole(built))
        assert whole.column("source_id")[0].as_py() == _whole(built).column("source_id")[0].as_py() > 2**53
        assert proxy.bytes < size - two + 4 * catalog.BLOCK_SIZE  # the blocks already there did not move again
        proxy.reset()
        assert same(bundle.catalog("sources", as_="arrow"), whole)
        assert proxy.connections == 0


def test_an_interrupted_read_through_the_service_resumes(rt, built: Path, service, tmp_path: Path) -> None:  # noqa: ANN001
    svc, files = service
    full = built.parent / "full"
    size = (full / CAT).stat().st_size
    with _proxy(svc) as proxy:
        bundle = rt.start(str(thin_copy(full, tmp_path / "thin", _through(proxy, files), [CAT])))
        proxy.cut_after = size // 2
        with pytest.raises(rt.FetchError, match="failed after"):
            bundle.catalog("sources")
        sha = json.loads((full / "nbpack.json").read_text())["catalogs"][0]["sha256"]
        log = (tmp_path / "cache" / "catalogs" / sha / f"blocks-{catalog.BLOCK_SIZE}.done").read_bytes()
        kept = len(log) // 4
        assert kept >= 2
        proxy.reset()
        assert same(bundle.catalog("sources"), _whole(built))
        assert proxy.bytes <= size - (kept - 1) * catalog.BLOCK_SIZE


def test_a_redirect_from_the_files_url_is_refused(rt, built: Path, service, tmp_path: Path) -> None:  # noqa: ANN001
    svc, files = service
    full = built.parent / "full"
    with _proxy(svc) as proxy:
        real = _through(proxy, files)
        with redirect_server(real.split("/files/")[0] + "/") as redirecting:
            path = urllib.parse.urlsplit(real).path.lstrip("/")
            bundle = rt.start(str(thin_copy(full, tmp_path / "thin", redirecting + path, [CAT])))
            with pytest.raises(rt.FetchError, match="HTTP 302 .*redirect"):
                bundle.catalog("sources", columns=["mag"])
        assert proxy.connections == 0  # the token never went where the redirect pointed


def _damage(data: bytearray, member_at: int, built: Path, column: str) -> int:
    """Flip a byte inside ``column``'s chunk of row group 1 in a stored copy; the catalog block it falls in."""
    md = pq.ParquetFile(built.parent / "full" / CAT).metadata
    j = md.schema.to_arrow_schema().names.index(column)
    chunk = md.row_group(1).column(j)
    offset = chunk.data_page_offset + chunk.total_compressed_size // 2
    data[member_at + offset] ^= 0xFF
    return offset // catalog.BLOCK_SIZE


def _refused(rt, full: Path, files: str, tmp_path: Path, block: int) -> None:  # noqa: ANN001
    bundle = rt.start(str(thin_copy(full, tmp_path / "thin", files, [CAT])))
    with pytest.raises(rt.ChecksumMismatch, match=f"block {block} "):
        bundle.catalog("sources", columns=["x03"])
    sha = json.loads((full / "nbpack.json").read_text())["catalogs"][0]["sha256"]
    cache = tmp_path / "cache" / "catalogs" / sha
    log = (cache / f"blocks-{catalog.BLOCK_SIZE}.done").read_bytes()
    assert block not in struct.unpack(f"<{len(log) // 4}I", log)  # nothing bad entered the cache
    assert not (cache / "catalog.parquet").exists()
    # Columns in blocks that were not touched still read, and match.
    assert same(bundle.catalog("sources", columns=["source_id"]), pq.read_table(full / CAT, columns=["source_id"]))


def test_damaged_stored_content_is_refused_on_a_partial_read(rt, built: Path, start_service, tmp_path: Path) -> None:  # noqa: ANN001
    key = secrets.token_urlsafe(12)
    store = tmp_path / "store"
    svc = start_service(service_env(str(store), key, cache_dir=str(tmp_path / "svc-cache")))
    files = Client(svc.url, key).push(built)["links"]["files"]
    full = built.parent / "full"
    size = (full / CAT).stat().st_size
    stored = max((store / "content").rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else -1)
    data = bytearray(stored.read_bytes())
    block = _damage(data, len(data) - size, built, "x03")
    stored.write_bytes(bytes(data))
    _refused(rt, full, files, tmp_path, block)


def test_damaged_content_in_seaweedfs_is_refused(
    rt, built: Path, s3_env, s3_bucket: str, start_service, tmp_path: Path
) -> None:  # noqa: ANN001
    import boto3

    key = secrets.token_urlsafe(12)
    svc = start_service(service_env(f"s3://{s3_bucket}/nbpack", key, cache_dir=str(tmp_path / "svc-cache")))
    files = Client(svc.url, key).push(built)["links"]["files"]
    full = built.parent / "full"
    size = (full / CAT).stat().st_size
    s3 = boto3.client("s3", endpoint_url=s3_env.endpoint, region_name="us-east-1")
    objects = s3.list_objects_v2(Bucket=s3_bucket, Prefix="nbpack/content/")["Contents"]
    biggest = max(objects, key=lambda o: o["Size"])["Key"]
    # First a clean partial read through SeaweedFS equals the same columns of the whole read.
    bundle = rt.start(str(thin_copy(full, tmp_path / "clean", files, [CAT])))
    assert same(bundle.catalog("sources", columns=["name", "epoch"]), _whole(built).select(["name", "epoch"]))
    shutil.rmtree(tmp_path / "cache")
    data = bytearray(s3.get_object(Bucket=s3_bucket, Key=biggest)["Body"].read())
    block = _damage(data, len(data) - size, built, "x03")
    s3.put_object(Bucket=s3_bucket, Key=biggest, Body=bytes(data))
    _refused(load_runtime_package("nbpack_runtime_lazy_svc"), full, files, tmp_path, block)
