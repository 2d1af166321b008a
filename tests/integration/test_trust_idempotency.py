"""Idempotent creates (issue 20): a retried create with its ``Idempotency-Key`` gets the first answer (same handle),
in-process and across two gunicorn replicas on SeaweedFS with concurrent retries."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from tests.fixtures.service import service_env
from tests.helpers import APP_API_KEY, make_app, reference_table
from tests.openapi_check import check_response

KEY2 = "second-tenant-key-0123456789"
REQUEST = {"title": "Once, ünïcode", "catalogs": [{"name": "c", "rows": [{"id": 2**53 + 1, "x": None}]}]}


def _listed(client, key: str = APP_API_KEY) -> list[str]:
    return [b["id"] for b in client.get("/api/v1/bundles", headers={"X-API-Key": key}).get_json()["bundles"]]


def test_a_retried_create_gets_the_first_answer(tmp_path: Path) -> None:
    app = make_app(tmp_path, api_keys=f"alpha={APP_API_KEY},beta={KEY2}")
    client = app.test_client()
    h = {"X-API-Key": APP_API_KEY, "Idempotency-Key": "3f6c1d2e-run-1"}
    first = client.post("/api/v1/bundles", headers=h, json=REQUEST)
    assert first.status_code == 201, first.get_json()
    assert "Idempotent-Replayed" not in first.headers
    again = client.post(
        "/api/v1/bundles", headers=h, data=json.dumps(REQUEST, indent=3), content_type="application/json"
    )
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert check_response(again) == first.get_json()
    assert _listed(client) == [first.get_json()["id"]]
    # The same key with another request: refused, nothing created.
    other = client.post("/api/v1/bundles", headers=h, json={**REQUEST, "title": "Another"})
    assert other.status_code == 422 and check_response(other)["error"] == "idempotency_key_reused"
    # Keys are per tenant: another tenant's same key is another create.
    theirs = client.post("/api/v1/bundles", headers={**h, "X-API-Key": KEY2}, json=REQUEST)
    assert theirs.status_code == 201 and theirs.get_json()["id"] != first.get_json()["id"]
    # Without a key every create is a new handle, as before.
    plain = client.post("/api/v1/bundles", headers={"X-API-Key": APP_API_KEY}, json=REQUEST)
    assert plain.get_json()["id"] != first.get_json()["id"] and len(_listed(client)) == 2
    # A malformed key is a 400 before anything is read or stored.
    for bad in ("", "x" * 256, "with space", "ünï"):
        resp = client.post("/api/v1/bundles", headers={**h, "Idempotency-Key": bad}, json=REQUEST)
        assert resp.status_code == 400, bad
    assert len(_listed(client)) == 2


def test_a_failed_create_releases_its_key(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = app.test_client()
    h = {"X-API-Key": APP_API_KEY, "Idempotency-Key": "k-fail-then-fix"}
    bad = client.post("/api/v1/bundles", headers=h, json={"title": "Bad", "catalogs": [{"name": "c"}]})
    assert bad.status_code == 400
    bad_again = client.post("/api/v1/bundles", headers=h, json={"title": "Bad", "catalogs": [{"name": "c"}]})
    assert bad_again.status_code == 400  # ran again (not 409, not a remembered error)
    good = client.post("/api/v1/bundles", headers=h, json=REQUEST)
    assert good.status_code == 201 and "Idempotent-Replayed" not in good.headers


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
