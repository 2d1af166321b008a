"""Issue 13, small requests: what a download and an ingest ask of S3 (counted with botocore's own event hooks on a
real SeaweedFS, and at obstore's calls for the small single requests it sends: store/s3_small.py), and that the
worker's cache of immutable objects never outlives a handle's revocation."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from flask import Flask
from flask.testing import FlaskClient

from bench.ingest import make_returns
from nbpack.bundle import archive
from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from nbpack.store.cache import MAX_OBJECT
from tests.helpers import APP_API_KEY, make_app

pytestmark = pytest.mark.s3

API = {"X-API-Key": APP_API_KEY}


class Requests:
    """Every request a service's S3 client sends, as (method, key below the storage prefix, query)."""

    def __init__(self, app: Flask) -> None:
        self.sent: list[tuple[str, str]] = []
        self.checksums: list[str] = []  # checksum headers sent (each one a pass over the body)
        storage = app.extensions["nbpack"].storage
        storage.client.meta.events.register("before-send.s3", self._seen)
        # The small single requests go by obstore (store/s3_small.py): one call is one request (retries aside).
        # Without obstore installed (a venv made before it became a dependency) botocore sends them, seen above.
        for name, method in (("put", "PUT"), ("create", "PUT"), ("replace", "PUT"), ("read_tagged", "GET")):
            if storage.small is not None:
                self._count(storage.small, name, method)

    def _count(self, small: Any, name: str, method: str) -> None:
        sent, prefix, original = self.sent, "nbpack/", getattr(small, name)

        def counted(key: str, *args: Any) -> Any:
            sent.append((method, key.removeprefix(prefix)))
            return original(key, *args)

        setattr(small, name, counted)

    def _seen(self, request: object, **_: object) -> None:
        url = request.url  # type: ignore[attr-defined]
        path, _, query = url.partition("?")
        key = path.split("/nbpack/", 1)[1] if "/nbpack/" in path else ""
        if "list-type=2" in query:
            key = "LIST " + query.split("prefix=nbpack%2F", 1)[1].split("&", 1)[0].replace("%2F", "/")
        self.sent.append((request.method, key))  # type: ignore[attr-defined]
        headers = request.headers  # type: ignore[attr-defined]
        # A HEAD's checksum mode only asks for the stored checksum in the answer (there is no body to check); on a
        # GET or PUT a checksum header is a pass over the body.
        self.checksums += [
            h
            for h in headers
            if h.lower().startswith(("x-amz-checksum", "x-amz-sdk-checksum"))
            and not (request.method == "HEAD" and h.lower() == "x-amz-checksum-mode")  # type: ignore[attr-defined]
        ]

    @contextlib.contextmanager
    def counting(self) -> Iterator[list[tuple[str, str]]]:
        self.sent.clear()
        seen: list[tuple[str, str]] = []
        yield seen
        seen.extend(self.sent)


@pytest.fixture
def replicas(s3_env, s3_bucket: str, tmp_path: Path) -> list[Flask]:
    """Two service replicas (own worker cache, own local cache dir) on one SeaweedFS bucket."""
    return [
        make_app(tmp_path / f"r{i}", storage=f"s3://{s3_bucket}/nbpack", s3_endpoint=s3_env.endpoint) for i in range(2)
    ]


def _bundle(path: Path, title: str, catalog_bytes: int = 0) -> Path:
    if catalog_bytes:
        # Random float64 written uncompressed: the catalog's zip part is about catalog_bytes.
        data = np.random.default_rng(len(title)).random(catalog_bytes // 8)
        table = pa.table({"x": data})
        src = path.with_suffix(".parquet")
        pq.write_table(table, src, compression="none")
    else:
        src = path.with_suffix(".csv")
        src.write_text('id,name\n9007199254740993,"a, é"\n2,\n')
    build_bundle(BuildSpec(title=title, catalogs=[CatalogInput("sources", src)]), path)
    return path


def _create(client: FlaskClient, zip_path: Path) -> dict:
    r = client.post("/api/v1/bundles", data=zip_path.read_bytes(), headers={**API, "Content-Type": "application/zip"})
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.get_json()


def _path(url: str) -> str:
    return url.replace("http://localhost", "")


def test_download_is_one_request_once_parts_are_cached(replicas: list[Flask], tmp_path: Path) -> None:
    writer, other = replicas
    created = _create(writer.test_client(), _bundle(tmp_path / "small.zip", "Small"))
    state = json.loads(writer.extensions["nbpack"].storage.inner.read_bytes(f"handles/{created['id']}/handle.json"))
    parts = [key for key, _ in state["parts"]]
    assert len(parts) > 20  # head, a record per member (runtime modules, notebook, catalog, ...), tail

    # The replica that stored the handle kept its small parts: its first download already reads only handle.json.
    counted = Requests(writer)
    with counted.counting() as seen:
        body = writer.test_client().get(_path(created["links"]["download"])).get_data()
    assert seen == [("GET", f"handles/{created['id']}/handle.json")]
    with archive.open_zip(io.BytesIO(body)) as got:
        assert got.testzip() is None and "catalogs/sources.parquet" in got.namelist()

    # Another replica reads every part once (it was 1 + parts before the cache, on every download), then one GET.
    counted = Requests(other)
    client = other.test_client()
    with counted.counting() as first:
        assert client.get(_path(created["links"]["download"])).get_data() == body
    assert first == [("GET", f"handles/{created['id']}/handle.json")] + [("GET", key) for key in parts]
    with counted.counting() as second:
        assert client.get(_path(created["links"]["download"])).get_data() == body
    assert second == [("GET", f"handles/{created['id']}/handle.json")]
    assert counted.checksums == []  # no checksum mode asked of GETs: no CRC32 pass over what is served


def test_a_big_catalog_is_streamed_not_cached(replicas: list[Flask], tmp_path: Path) -> None:
    app = replicas[1]
    created = _create(replicas[0].test_client(), _bundle(tmp_path / "big.zip", "Big", catalog_bytes=2 * MAX_OBJECT))
    state = json.loads(app.extensions["nbpack"].storage.inner.read_bytes(f"handles/{created['id']}/handle.json"))
    big = [key for key, size in state["parts"] if size > MAX_OBJECT]
    assert len(big) == 1
    counted = Requests(app)
    client = app.test_client()
    for _ in range(2):
        with counted.counting() as seen:
            body = client.get(_path(created["links"]["download"])).get_data()
        assert len(body) == sum(size for _, size in state["parts"])
    # Warm: the handle's state, then the one part too big to keep (one GET, as boto3 alone would make).
    assert seen == [("GET", f"handles/{created['id']}/handle.json"), ("GET", big[0])]
    assert app.extensions["nbpack"].storage.cached_bytes <= 32 << 20


def test_cached_manifest_is_per_handle_and_a_deleted_handle_is_refused_at_once(
    replicas: list[Flask], tmp_path: Path
) -> None:
    writer, reader = replicas
    a = _create(writer.test_client(), _bundle(tmp_path / "a.zip", "Handle A"))
    b = _create(writer.test_client(), _bundle(tmp_path / "b.zip", "Handle B"))
    client = reader.test_client()
    for _ in range(2):  # the second round is answered from the reader's cache
        for h, title in ((a, "Handle A"), (b, "Handle B")):
            r = client.get(f"/api/v1/bundles/{h['id']}", headers=API)
            assert r.status_code == 200 and r.get_json()["title"] == title
            assert client.get(_path(h["links"]["download"])).status_code == 200
    # Deleted through the other replica: the reader still holds A's manifest and parts, and must not use them.
    assert writer.test_client().delete(f"/api/v1/bundles/{a['id']}", headers=API).status_code == 204
    r = client.get(_path(a["links"]["download"]))
    assert r.status_code == 403 and r.get_json()["error"] == "token_revoked"
    assert client.get(f"/api/v1/bundles/{a['id']}", headers=API).status_code == 404
    assert client.get(_path(a["links"]["landing"])).status_code == 403
    assert client.get(_path(b["links"]["download"])).status_code == 200


def test_ingest_requests(replicas: list[Flask], tmp_path: Path) -> None:
    app = replicas[0]
    client = app.test_client()
    created = _create(client, _bundle(tmp_path / "r.zip", "Returns"))
    hid = created["id"]
    stored = tmp_path / "stored.zip"
    stored.write_bytes(client.get(_path(created["links"]["download"])).get_data())
    folder = tmp_path / "unpacked"
    with archive.open_zip(stored) as zf:
        archive.extract(zf, folder)
    token = json.loads((folder / "nbpack.json").read_text())["returns"]["token"]
    with contextlib.redirect_stdout(io.StringIO()):
        paths = make_returns(folder, tmp_path / "returns", 64 << 10, 2)
    counted = Requests(app)

    def post(path: Path) -> tuple[int, list[tuple[str, str]]]:
        with counted.counting() as seen:
            r = client.post(
                f"/api/v1/bundles/{hid}/returns",
                data=path.read_bytes(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/zip"},
            )
        return r.status_code, seen

    status, first = post(paths[0])
    assert status == 201
    # The first conditional write of this storage asks once whether the server honours If-None-Match and If-Match.
    probes = [s for s in first if "/.tmp-conditional-" in s[1]]
    assert [m for m, _ in probes] == ["PUT", "PUT", "PUT", "DELETE"]
    with archive.open_zip(paths[1]) as zf:
        rid = json.loads(archive.read_member(zf, "nbpack-return.json"))["id"]
    status, second = post(paths[1])
    assert status == 201
    # 3 requests (13 before issue 23, 6 after its first pass). The handle's ledger answers the count and bytes
    # quotas in one conditional PUT (If-Match on the ETag this worker's last write of it got back; no GET while no
    # other replica wrote it), in place of the quota lock, the listings of reservations, returns and blobs, and the
    # reservation marker. That PUT is also where a DELETE stops an upload (the delete writes a tombstone there
    # first), so the token check answers from the worker's copy of the handle and no HEAD follows the commit; and
    # with no tenant quota configured the tenant's bytes are the ledger entry's (no usage marker). Left: the
    # ledger, the zip and the create-once manifest (what makes the return visible, once).
    assert second == [
        ("PUT", f"quota/{hid}/returns.json"),
        ("PUT", f"returns/{hid}/{rid}/return.zip"),
        ("PUT", f"returns/{hid}/{rid}/manifest.json"),
    ]
    # No CRC32 computed over the zip on its way out (SigV4's payload sha256 covers it over plain HTTP).
    assert counted.checksums == []
    # The same return again: stored once, answered 200 from the ledger and a HEAD of its manifest, nothing written.
    status, again = post(paths[1])
    assert status == 200 and again == [("HEAD", f"returns/{hid}/{rid}/manifest.json")]


def test_concurrent_creates_of_one_key_make_one_winner(replicas: list[Flask]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    storage = replicas[0].extensions["nbpack"].storage
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda i: storage.put_if_absent("once/key", f"writer {i}".encode()), range(8)))
    assert won.count(True) == 1 and storage.inner._conditional is True
    assert storage.read_bytes("once/key") == f"writer {won.index(True)}".encode()
