"""Signed range reads against the real parts: gunicorn on SeaweedFS hands out presigned GET URLs
(``/files/…/<path>?signed=1``) and the runtime's ranges go straight to SeaweedFS, through a proxy that counts the
bytes and keeps the requests (so the git token can be looked for), while another proxy counts what the service sends.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from nbpack.client import Client
from tests.fixtures.service import service_env
from tests.helpers import load_runtime_package, unload_runtime
from tests.integration.test_lazy_service import _damage
from tests.lazy_helpers import CountingProxy, awkward_catalog, same, thin_copy

CAT = "catalogs/sources.parquet"
COLS = ["x07", "x08"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle zip whose one catalog has 22 awkward columns over ~20 blocks, and its unpacked folder beside it."""
    work = tmp_path_factory.mktemp("signed")
    build_bundle(
        BuildSpec(title="Signed", catalogs=[CatalogInput("sources", awkward_catalog(120_000))]), work / "b.zip"
    )
    with zipfile.ZipFile(work / "b.zip") as zf:
        zf.extractall(work / "full")
    return work / "b.zip"


@pytest.fixture
def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    monkeypatch.setenv("NBPACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NBPACK_RETRY_DELAY", "0.01")
    yield load_runtime_package("nbpack_runtime_signed")
    unload_runtime("nbpack_runtime_signed")


@pytest.fixture
def storage(s3_env) -> Iterator[CountingProxy]:  # noqa: ANN001
    """A proxy in front of SeaweedFS: the endpoint the service signs for, so every signed read passes it."""
    port = urllib.parse.urlsplit(s3_env.endpoint).port
    with CountingProxy(("127.0.0.1", port)) as proxy:
        yield proxy


@pytest.fixture
def stack(built: Path, s3_bucket: str, storage: CountingProxy, start_service, tmp_path: Path):  # noqa: ANN001, ANN201
    """A started service on SeaweedFS (through ``storage``), the bundle pushed: a factory of (client, doc, service
    proxy), extra settings as keyword arguments."""
    proxies: list[CountingProxy] = []

    def make(**extra: str):  # noqa: ANN202
        key = secrets.token_urlsafe(12)
        env = service_env(
            f"s3://{s3_bucket}/nbpack",
            key,
            cache_dir=str(tmp_path / f"svc-cache-{len(proxies)}"),
            s3_endpoint=f"http://127.0.0.1:{storage.port}",
            **extra,
        )
        svc = start_service(env)
        client = Client(svc.url, key)
        doc = client.push(built)
        proxy = CountingProxy(("127.0.0.1", svc.port)).__enter__()
        proxies.append(proxy)
        storage.reset()
        return client, doc, proxy

    yield make
    for proxy in proxies:
        proxy.__exit__(None, None, None)


def _through(proxy: CountingProxy, files: str) -> str:
    return urllib.parse.urlsplit(files)._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()


def _thin(built: Path, files: str, dest: Path) -> Path:
    return thin_copy(built.parent / "full", dest, files, [CAT])


def _whole(built: Path):  # noqa: ANN202
    return pq.read_table(built.parent / "full" / CAT)


def _token(files: str) -> bytes:
    return urllib.parse.urlsplit(files).path.split("/")[2].encode()


def test_a_column_subset_comes_straight_from_storage_and_no_token_goes_there(
    rt, built: Path, stack, storage: CountingProxy, tmp_path: Path
) -> None:  # noqa: ANN001
    _client, doc, service = stack()
    files = doc["links"]["files"]
    size = (built.parent / "full" / CAT).stat().st_size
    storage.record = True
    bundle = rt.start(str(_thin(built, _through(service, files), tmp_path / "thin")))
    part = bundle.catalog("sources", columns=COLS)
    assert same(part, _whole(built).select(COLS))
    # The service answered one small JSON document; the column chunks (and the footer) came from SeaweedFS.
    assert service.bytes < 8 << 10, service.bytes
    assert 0.05 * size < storage.bytes < 0.5 * size, (storage.bytes, size)
    sent = bytes(storage.sent)
    assert sent.count(b"GET /") >= 2 and b"X-Amz-Signature=" in sent and b"Range: bytes=" in sent
    assert _token(files) not in sent and b"/files/" not in sent  # the git token never reached storage
    # The rest of the file comes the same way, verified; the whole equals the stored catalog.
    service.reset()
    assert same(bundle.catalog("sources"), _whole(built))
    assert service.bytes == 0  # the grant was kept: no second ask
    assert _token(files) not in bytes(storage.sent)


def test_with_signed_reads_off_every_byte_goes_through_the_service(
    rt, built: Path, stack, storage: CountingProxy, tmp_path: Path
) -> None:  # noqa: ANN001
    _client, doc, service = stack(signed_reads="off")
    size = (built.parent / "full" / CAT).stat().st_size
    bundle = rt.start(str(_thin(built, _through(service, doc["links"]["files"]), tmp_path / "thin")))
    assert same(bundle.catalog("sources", columns=COLS), _whole(built).select(COLS))
    assert service.bytes > 0.05 * size


def test_a_block_altered_in_storage_is_refused(
    rt, built: Path, stack, storage: CountingProxy, s3_env, s3_bucket: str, tmp_path: Path
) -> None:  # noqa: ANN001
    import boto3

    _client, doc, service = stack()
    size = (built.parent / "full" / CAT).stat().st_size
    s3 = boto3.client("s3", endpoint_url=s3_env.endpoint, region_name="us-east-1")
    objects = s3.list_objects_v2(Bucket=s3_bucket, Prefix="nbpack/content/")["Contents"]
    biggest = max(objects, key=lambda o: o["Size"])["Key"]
    data = bytearray(s3.get_object(Bucket=s3_bucket, Key=biggest)["Body"].read())
    original = bytes(data)
    block = _damage(data, len(data) - size, built, "x03")
    s3.put_object(Bucket=s3_bucket, Key=biggest, Body=bytes(data))
    try:
        storage.reset()
        bundle = rt.start(str(_thin(built, _through(service, doc["links"]["files"]), tmp_path / "thin")))
        with pytest.raises(rt.ChecksumMismatch, match=f"block {block} "):
            bundle.catalog("sources", columns=["x03"])
        assert storage.bytes > 0 and service.bytes < 8 << 10  # refused on the signed path, not the service's
    finally:
        s3.put_object(Bucket=s3_bucket, Key=biggest, Body=original)  # content objects are shared by later tests


def test_an_expired_url_is_asked_again_once(rt, built: Path, stack, storage: CountingProxy, tmp_path: Path) -> None:  # noqa: ANN001
    _client, doc, service = stack(signed_read_ttl="2")
    bundle = rt.start(str(_thin(built, _through(service, doc["links"]["files"]), tmp_path / "thin")))
    asks: list[str] = []
    ask = rt.signed.ask

    def counted(member: str, size: int):  # noqa: ANN202
        asks.append(member)
        return ask(member, size)

    rt.signed.ask = counted
    assert same(bundle.catalog("sources", columns=["x01"]), _whole(built).select(["x01"]))
    assert len(asks) == 1
    # The kernel's clock still holds the URL good (as it would with a store whose clock runs ahead): SeaweedFS
    # answers 403, the runtime asks once more and reads on from storage.
    time.sleep(3)
    for member, (grant, _deadline) in list(rt.signed._grants.items()):
        far = time.monotonic() + 3600
        rt.signed._grants[member] = (replace(grant, deadline=far), far)
    storage.reset()
    service.reset()
    assert same(bundle.catalog("sources", columns=COLS), _whole(built).select(COLS))
    assert len(asks) == 2
    assert storage.bytes > 0 and service.bytes < 8 << 10


def test_a_deleted_handle_gets_no_url_at_once(built: Path, stack) -> None:  # noqa: ANN001
    client, doc, service = stack()
    member = _through(service, doc["links"]["files"]) + CAT
    # A plain read first: this worker now remembers the handle for a second (see Capabilities.recent).
    with urllib.request.urlopen(urllib.request.Request(member, headers={"Range": "bytes=0-3"})) as resp:
        assert resp.read() == b"PAR1"
    with urllib.request.urlopen(member + "?signed=1") as resp:
        grant = json.loads(resp.read())
    assert grant["length"] == (built.parent / "full" / CAT).stat().st_size and grant["expires_in"] == 300
    client.delete(doc["id"])
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(member + "?signed=1")
    assert refused.value.code == 403
    assert json.loads(refused.value.read())["error"] == "token_revoked"


def test_ranges_to_storage_reuse_kept_connections(
    rt, built: Path, stack, storage: CountingProxy, tmp_path: Path
) -> None:  # noqa: ANN001
    _client, doc, service = stack()
    bundle = rt.start(str(_thin(built, _through(service, doc["links"]["files"]), tmp_path / "thin")))
    storage.record = True
    for i in range(12):  # one kernel, reads one after another: each a footer range then its columns' ranges
        column = f"x{i:02d}"
        assert same(bundle.catalog("sources", columns=[column]), _whole(built).select([column]))
    gets = bytes(storage.sent).count(b"GET /")
    # urllib opened one connection per range; kept-alive ones serve range after range, read after read.
    assert gets >= 12 and storage.connections <= rt.lazy.IN_FLIGHT, (gets, storage.connections)
    assert b"Connection: close" not in bytes(storage.sent)
