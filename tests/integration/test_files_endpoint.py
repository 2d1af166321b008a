"""``/files/<git token>/<hid>/<path>`` through gunicorn on SeaweedFS; in process (members, ranges, which capability
reads them) in tests/unit/test_files_endpoint.py."""

from __future__ import annotations

import json
import secrets
import urllib.request
import zipfile

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from nbpack.client import Client
from tests.fixtures.service import service_env
from tests.unit.test_files_endpoint import stars_table


def test_ranges_through_gunicorn_on_seaweedfs(s3_bucket, start_service, tmp_path):
    key = "files-" + secrets.token_hex(8)
    env = service_env(
        f"s3://{s3_bucket}/files", f"esap={key}", secret_key=secrets.token_urlsafe(32), cache_dir=str(tmp_path / "c")
    )
    svc = start_service(env, workers=1, threads=4)
    path = tmp_path / "b.zip"
    build_bundle(BuildSpec(title="S3 files", catalogs=[CatalogInput("stars", stars_table(100_000))]), path)
    doc = Client(svc.url, key).push(path)
    catalog = json.loads(zipfile.ZipFile(path).read("nbpack.json"))["catalogs"][0]["path"]
    whole = zipfile.ZipFile(path).read(catalog)
    req = urllib.request.Request(doc["links"]["files"] + catalog, headers={"Range": "bytes=4-1027"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 206 and resp.read() == whole[4:1028]
    with urllib.request.urlopen(doc["links"]["files"] + catalog, timeout=60) as resp:
        assert resp.read() == whole
