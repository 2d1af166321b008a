"""``/files/<git token>/<hid>/<path>`` in process: one member of a handle's bundle, byte ranges read from one stored
part, and the ranged parts reader under it. Gunicorn on SeaweedFS is in
tests/integration/test_files_endpoint.py."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from nbpack.store.zipparts import RangedParts
from tests.helpers import APP_API_KEY, make_app
from tests.openapi_check import check_response

H = {"X-API-Key": APP_API_KEY}


def stars_table(rows: int) -> pa.Table:
    return pa.table(
        {
            "id": pa.array([2**53 + 1 + i for i in range(rows)], pa.int64()),
            "flux": pa.array([float("nan") if i % 7 == 0 else None if i % 11 == 0 else i / 3 for i in range(rows)]),
            "name": pa.array([f"Étoile, n°{i}" for i in range(rows)]),
        }
    )


@pytest.fixture
def pushed(tmp_path: Path):
    app = make_app(tmp_path)
    client = app.test_client()
    path = tmp_path / "b.zip"
    build_bundle(BuildSpec(title="Files", catalogs=[CatalogInput("stars", stars_table(200_000))]), path)
    resp = client.post("/api/v1/bundles", data=path.read_bytes(), content_type="application/zip", headers=H)
    doc = check_response(resp)
    assert resp.status_code == 201, doc
    prefix = doc["links"]["files"]
    assert prefix.startswith("http://localhost/files/") and prefix.endswith(f"/{doc['id']}/")
    return app, client, doc, prefix.removeprefix("http://localhost"), zipfile.ZipFile(path)


def counting_reads(app) -> list[tuple[str, int, int | None]]:
    """Every ranged storage read the service makes from now on: (key, start, end)."""
    svc = app.extensions["nbpack"]
    reads: list[tuple[str, int, int | None]] = []
    original = svc.storage.iter_chunks

    def counted(key, chunk_size=1 << 20, start=0, end=None):
        reads.append((key, start, end))
        return original(key, chunk_size, start, end)

    svc.storage.iter_chunks = counted
    return reads


def test_members_whole_equal_the_zip_and_carry_their_sha256(pushed):
    app, client, doc, prefix, zf = pushed
    manifest = json.loads(zf.read("nbpack.json"))
    digests = {e["path"]: e["sha256"] for e in manifest["contents"]}
    catalog = manifest["catalogs"][0]["path"]
    for name in (catalog, "nbpack.json", manifest["payload"]["notebook"], "nbpack_runtime/bundle.py"):
        resp = client.get(prefix + name)
        assert resp.status_code == 200, (name, resp.get_json(silent=True))
        assert int(resp.headers["Content-Length"]) == len(resp.data)
        if name == "nbpack.json":
            # The handle's own manifest (its returns section differs from the pushed zip's), same content id.
            assert json.loads(resp.data)["id"] == manifest["id"]
            continue
        assert resp.data == zf.read(name)
        assert resp.headers["ETag"] == f'"{digests[name]}"' == f'"{hashlib.sha256(resp.data).hexdigest()}"'
    assert pq.read_table(io.BytesIO(client.get(prefix + catalog).data)).num_rows == 200_000


def test_a_range_of_a_catalog_is_one_ranged_read_of_its_part(pushed):
    app, client, doc, prefix, zf = pushed
    catalog = json.loads(zf.read("nbpack.json"))["catalogs"][0]["path"]
    whole = zf.read(catalog)
    assert zf.getinfo(catalog).compress_type == zipfile.ZIP_STORED and len(whole) > 500_000
    client.get(prefix + catalog, headers={"Range": "bytes=0-0"})  # directory and local header located once
    reads = counting_reads(app)
    for rng, (lo, hi) in {"bytes=1000-1999": (1000, 1999), "bytes=-8": (len(whole) - 8, len(whole) - 1)}.items():
        resp = client.get(prefix + catalog, headers={"Range": rng})
        assert resp.status_code == 206, resp.data[:200]
        assert resp.data == whole[lo : hi + 1]
        assert resp.headers["Content-Range"] == f"bytes {lo}-{hi}/{len(whole)}"
    # Two ranges, two reads, each of exactly the bytes asked for (offset by the local header), never the whole part.
    assert len(reads) == 2 and all(end is not None and end - start < 1000 for _, start, end in reads), reads
    assert client.get(prefix + catalog, headers={"Range": f"bytes={len(whole)}-"}).status_code == 416


def test_ranged_parts_reader_seeks_like_a_file(tmp_path):
    """zipfile reads a zip through RangedParts exactly as from the file, asking only for the ranges it reads."""
    path = tmp_path / "b.zip"
    build_bundle(BuildSpec(title="Parts", catalogs=[CatalogInput("stars", stars_table(50_000))]), path)
    data = path.read_bytes()
    cuts = [0, 100, 100, 5000, len(data) // 2, len(data)]  # an empty part on purpose
    parts = [(f"p{i}", cuts[i + 1] - cuts[i]) for i in range(len(cuts) - 1)]
    blobs = {f"p{i}": data[cuts[i] : cuts[i + 1]] for i in range(len(cuts) - 1)}
    asked: list[int] = []

    def read_range(key, start, end):
        asked.append(end - start + 1)
        blob = blobs[key][start : end + 1]
        for i in range(0, len(blob), 777):
            yield blob[i : i + 777]

    reader = io.BufferedReader(RangedParts(parts, read_range), 4096)
    with zipfile.ZipFile(reader) as zf, zipfile.ZipFile(path) as ref:
        assert zf.namelist() == ref.namelist()
        assert zf.read("nbpack.json") == ref.read("nbpack.json")
    # The directory and one small member: a few small windows, far from the whole zip.
    assert sum(asked) < len(data) // 4, (asked, len(data))
    reader.seek(-10, io.SEEK_END)
    assert reader.read(10) == data[-10:]
    reader.seek(95)
    assert reader.read(20) == data[95:115]  # across the empty part
    asked.clear()
    assert reader.read() == data[115:]
    assert len(asked) <= 12, asked  # streamed on: windows double, not one request per chunk


def test_the_git_capability_and_nothing_else_reads_members(pushed, tmp_path):
    app, client, doc, prefix, zf = pushed
    token, hid = prefix.split("/")[2:4]
    assert client.get(prefix + "no/such.file").status_code == 404
    assert check_response(client.get(prefix + "no/such.file"))["error"] == "not_found"
    read_token = doc["links"]["landing"].split("?t=")[1]
    for bad in (f"/files/{read_token}/{hid}/nbpack.json", f"/files/{token[:-2]}xx/{hid}/nbpack.json"):
        resp = client.get(bad)
        assert resp.status_code in (403, 404), resp.status_code
        assert set(resp.get_json()) == {"error", "message"}
    other = build_bundle(BuildSpec(title="Other", catalogs=[CatalogInput("t", [{"a": 1}])]), tmp_path / "o.zip")
    resp = client.post(
        "/api/v1/bundles", data=(tmp_path / "o.zip").read_bytes(), content_type="application/zip", headers=H
    )
    other_hid = resp.get_json()["id"]
    assert other["id"] and client.get(f"/files/{token}/{other_hid}/nbpack.json").status_code == 403
    assert client.delete(f"/api/v1/bundles/{hid}", headers=H).status_code == 204
    assert client.get(prefix + "nbpack.json").status_code in (403, 404)
