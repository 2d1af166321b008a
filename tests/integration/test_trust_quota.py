"""Quotas that hold under parallel load (issue 20): 30 parallel distinct returns against two gunicorn replicas on
SeaweedFS never pass a count or a byte quota; a return already stored still answers 200; a failed write releases
what it reserved."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nbpack.client import Client
from nbpack.errors import StorageError
from tests.fixtures.service import ServiceProcess, service_env
from tests.helpers import APP_API_KEY, make_app
from tests.integration.test_scale_out import _make_returns, _rid

KEY = "quota-key-0123456789abcdef"
UPLOADS = 30


def _post(url: str, token: str, data: bytes) -> int:
    req = urllib.request.Request(
        url, data=data, method="POST", headers={"Authorization": f"Bearer {token}", "Content-Type": "application/zip"}
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        err.read()
        return err.code


def _handle(replica: ServiceProcess, tmp_path: Path, name: str) -> tuple[str, dict, Path]:
    client = Client(replica.url, KEY, timeout=60)
    created = client.create({"title": f"Quota {name}", "catalogs": [{"name": "c", "rows": [{"id": 2**53 + 1}]}]})
    path = client.download(created["id"], tmp_path / f"{name}.zip")
    folder = tmp_path / f"{name}-bundle"
    with zipfile.ZipFile(path) as zf:
        zf.extractall(folder)
        returns = json.loads(zf.read("nbpack.json"))["returns"]
    return created["id"], returns, folder


def _storm(replicas: list[ServiceProcess], returns: dict, zips: list[Path]) -> list[int]:
    """Every zip uploaded at once, alternately to each replica (the endpoint's path, each replica's address)."""
    path = "/" + returns["endpoint"].split("/", 3)[3]
    with ThreadPoolExecutor(len(zips)) as pool:
        return list(
            pool.map(
                lambda i: _post(replicas[i % len(replicas)].url + path, returns["token"], zips[i].read_bytes()),
                range(len(zips)),
            )
        )


def _stored(replica: ServiceProcess, hid: str) -> list[dict]:
    return Client(replica.url, KEY, timeout=60).returns(hid)


def test_parallel_returns_never_pass_a_count_or_byte_quota(s3_bucket, start_service, tmp_path: Path) -> None:
    storage, secret = f"s3://{s3_bucket}/nbpack", "q" * 40

    def pair(**limits: str) -> list[ServiceProcess]:
        return [
            start_service(
                service_env(storage, KEY, secret_key=secret, cache_dir=str(tmp_path / f"c-{len(limits)}-{i}"), **limits)
            )
            for i in range(2)
        ]

    count_pair = pair(max_returns_per_bundle="5")
    hid, returns, folder = _handle(count_pair[0], tmp_path, "count")
    zips = _make_returns(folder, [tmp_path / f"run-{i}" for i in range(UPLOADS)])
    assert len({_rid(z) for z in zips}) == UPLOADS
    statuses = _storm(count_pair, returns, zips)
    assert sorted(statuses) == [201] * 5 + [429] * (UPLOADS - 5), statuses
    stored = _stored(count_pair[1], hid)
    assert len(stored) == 5
    # A stored return sent again: 200, quota full or not.
    first = next(z for z, s in zip(zips, statuses, strict=True) if s == 201)
    path = "/" + returns["endpoint"].split("/", 3)[3]
    assert _post(count_pair[1].url + path, returns["token"], first.read_bytes()) == 200
    for svc in count_pair:
        svc.stop()

    # Bytes: room for five returns and a half.
    size = max(z.stat().st_size for z in zips)
    quota = 5 * size + size // 2
    bytes_pair = pair(max_return_bytes_per_bundle=str(quota))
    hid, returns, folder = _handle(bytes_pair[0], tmp_path, "bytes")
    zips = _make_returns(folder, [tmp_path / f"brun-{i}" for i in range(UPLOADS)])
    statuses = _storm(bytes_pair, returns, zips)
    assert sorted(statuses) == [201] * 5 + [413] * (UPLOADS - 5), statuses
    stored = _stored(bytes_pair[0], hid)
    assert len(stored) == 5
    kept = sum(z.stat().st_size for z, s in zip(zips, statuses, strict=True) if s == 201)
    assert kept <= quota


def test_a_failed_write_releases_its_reservation(tmp_path: Path) -> None:
    """Count quota 1: an upload whose zip write fails leaves the slot free for the next return."""
    from nbpack.local.execute import run_bundle

    app = make_app(tmp_path, max_returns_per_bundle=1)
    client = app.test_client()
    created = client.post(
        "/api/v1/bundles",
        headers={"X-API-Key": APP_API_KEY},
        json={"title": "Q", "catalogs": [{"name": "c", "rows": [{"a": 1}]}]},
    ).get_json()
    zpath = tmp_path / "b.zip"
    zpath.write_bytes(
        client.get(f"/api/v1/bundles/{created['id']}/download", headers={"X-API-Key": APP_API_KEY}).get_data()
    )
    with zipfile.ZipFile(zpath) as zf:
        token = json.loads(zf.read("nbpack.json"))["returns"]["token"]
    one = run_bundle(zpath, tmp_path / "r1.zip", timeout=120).return_path
    two = run_bundle(zpath, tmp_path / "r2.zip", timeout=120).return_path
    storage = app.extensions["nbpack"].storage
    calls = []

    def failing(write):  # the first write of a return's zip fails as a storage outage would
        def wrapped(key, data):
            if key.endswith("/return.zip"):
                calls.append(key)
                if len(calls) == 1:
                    raise StorageError("S3 endpoint unreachable (injected)")
            return write(key, data)

        return wrapped

    # A small body is stored from memory (put_bytes), a large one from its spool file (put_file).
    storage.put_file, storage.put_bytes = failing(storage.put_file), failing(storage.put_bytes)
    h = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/bundles/{created['id']}/returns"
    assert client.post(url, data=one.read_bytes(), content_type="application/zip", headers=h).status_code == 503
    assert len(calls) == 1  # the injected failure is what answered 503
    ledger = json.loads(storage.read_bytes(f"quota/{created['id']}/returns.json"))
    assert ledger["returns"] == {}  # nothing reserved is left
    assert not list(storage.list("tenants/default/usage/" + created["id"] + "/r-"))
    assert client.post(url, data=two.read_bytes(), content_type="application/zip", headers=h).status_code == 201
    assert client.post(url, data=one.read_bytes(), content_type="application/zip", headers=h).status_code == 429


def test_parallel_creates_never_pass_the_tenant_quota(s3_bucket, start_service, tmp_path: Path) -> None:
    from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
    from tests.helpers import reference_table

    path = tmp_path / "b.zip"
    build_bundle(BuildSpec(title="Tenant quota, ünï", catalogs=[CatalogInput("stars", reference_table())]), path)
    size = path.stat().st_size
    quota = 3 * size + size // 2  # room for three (each stored zip is the pushed one plus its returns section)
    storage, secret = f"s3://{s3_bucket}/nbpack", "t" * 40
    replicas = [
        start_service(
            service_env(
                storage, KEY, secret_key=secret, cache_dir=str(tmp_path / f"c{i}"), tenant_quota_bytes=str(quota)
            )
        )
        for i in range(2)
    ]
    body = path.read_bytes()

    def push(i: int) -> int:
        req = urllib.request.Request(
            replicas[i % 2].url + "/api/v1/bundles",
            data=body,
            method="POST",
            headers={"X-API-Key": KEY, "Content-Type": "application/zip"},
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status
        except urllib.error.HTTPError as err:
            err.read()
            return err.code

    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(push, range(12)))
    assert sorted(statuses) == [201] * 3 + [413] * 9, statuses
    listed = Client(replicas[1].url, KEY, timeout=60).list()["bundles"]
    assert len(listed) == 3 and sum(b["bytes"] for b in listed) <= quota
