"""A scientist's browser (Chromium) downloads a big zip from the store through the service's redirect."""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from pathlib import Path

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from nbpack.client import Client
from nbpack.store.backends import open_storage
from tests.fixtures.service import service_env


def test_the_landing_page_download_follows_the_redirect(
    s3_env, s3_bucket: str, start_service, page, tmp_path: Path
) -> None:
    key = secrets.token_urlsafe(16)
    storage_url = f"s3://{s3_bucket}/nbpack"
    # Every zip counts as big here: the redirect is what is under test, not the threshold.
    svc = start_service(service_env(storage_url, key, cache_dir=str(tmp_path / "cache"), whole_zip_min_bytes="1"))
    csv = tmp_path / "sources.csv"
    csv.write_text("id,flux\n1,1.5\n2,2.5\n")
    zip_path = tmp_path / "bundle.zip"
    build_bundle(BuildSpec(title="Redirected", catalogs=[CatalogInput("sources", csv)]), zip_path)
    created = Client(svc.url, key).push(zip_path)
    bid = created["id"]
    storage = open_storage(storage_url, endpoint_url=s3_env.endpoint)
    parts = json.loads(storage.read_bytes(f"handles/{bid}/handle.json"))["parts"]
    expected = b"".join(storage.read_bytes(k) for k, _ in parts)
    # The first download streams and starts composing the whole zip; the browser's comes once it is there.
    with urllib.request.urlopen(created["links"]["download"], timeout=60) as first:
        assert first.read() == expected
    deadline = time.monotonic() + 60
    while not storage.exists(f"handles/{bid}/whole.zip"):
        assert time.monotonic() < deadline, "the whole zip was not composed within 60 s"
        time.sleep(0.2)

    resp = page.goto(created["links"]["landing"])
    assert resp is not None and resp.status == 200
    with page.expect_download() as info:
        page.locator("#download").click()
    download = info.value
    assert download.failure() is None
    # The store's answer names the file as the service would (response-content-disposition in the signed URL).
    assert download.suggested_filename == f"{bid}.zip"
    assert download.url.startswith(s3_env.endpoint) and "whole.zip" in download.url
    assert Path(download.path()).read_bytes() == expected
