"""Idempotent creates (issue 20) across two gunicorn replicas on SeaweedFS with concurrent retries: a retried create
with its ``Idempotency-Key`` gets the first answer (same handle). In process: tests/unit/test_idempotency.py."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from tests.fixtures.service import service_env
from tests.helpers import reference_table


def _post(url: str, body: bytes, key: str, idem: str) -> tuple[int, dict]:
    req = urllib.request.Request(
        url + "/api/v1/bundles?owner=ada",
        data=body,
        method="POST",
        headers={"X-API-Key": key, "Idempotency-Key": idem, "Content-Type": "application/zip"},
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_concurrent_retries_on_two_replicas_make_one_handle(s3_bucket, start_service, tmp_path: Path) -> None:
    key = "idem-s3-key-0123456789"
    storage = f"s3://{s3_bucket}/nbpack"
    secret = "s" * 40
    replicas = [
        start_service(service_env(storage, key, secret_key=secret, cache_dir=str(tmp_path / f"cache{i}")), threads=8)
        for i in range(2)
    ]
    path = tmp_path / "b.zip"
    build_bundle(BuildSpec(title="Pushed once", catalogs=[CatalogInput("stars", reference_table())]), path)
    body = path.read_bytes()
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda i: _post(replicas[i % 2].url, body, key, "push-once-1"), range(10)))
    created = [doc for status, doc in answers if status == 201]
    assert created and all(status in (201, 409) for status, _ in answers), answers
    assert {doc["id"] for doc in created} == {created[0]["id"]}
    # A later retry (the first answer lost) on either replica: the same handle; the tenant lists exactly one.
    for svc in replicas:
        status, doc = _post(svc.url, body, key, "push-once-1")
        assert status == 201 and doc["id"] == created[0]["id"]
    req = urllib.request.Request(replicas[1].url + "/api/v1/bundles", headers={"X-API-Key": key})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert [b["id"] for b in json.loads(resp.read())["bundles"]] == [created[0]["id"]]
    status, doc = _post(replicas[0].url, body + b"\0", key, "push-once-1")
    assert status == 422 and doc["error"] == "idempotency_key_reused"
