"""Big zips on S3 are downloaded from one whole-zip object composed inside the store, by a presigned redirect.

Real SeaweedFS and a real gunicorn service: the redirected bytes are the zip the stored parts make, Range works
through the redirect, a deleted handle gets a 404 (not a URL), a small zip and a local-folder service still stream.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle, check_bundle, open_bundle
from nbpack.client import pull
from nbpack.errors import NotFound
from nbpack.store.backends import open_storage
from nbpack.store.s3_compose import MIN_COPY, MIN_PART
from tests.fixtures.service import service_env

KEY = secrets.token_urlsafe(16)
THRESHOLD = 8 << 20


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_no_follow = urllib.request.build_opener(_NoRedirect)


def _get(url: str, headers: dict[str, str] | None = None, follow: bool = True) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with (urllib.request.urlopen if follow else _no_follow.open)(req, timeout=120) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A bundle with a ~24 MB incompressible catalog (a record big enough to be copied by range) and a small one."""
    work = tmp_path_factory.mktemp("whole")
    table = pa.table({"x": np.random.default_rng(1).random(3_000_000)})
    pq.write_table(table, work / "big.parquet", compression="none")
    (work / "small.csv").write_text("id,flux\n1,1.5\n")
    out = {}
    for name, source in (("big", work / "big.parquet"), ("small", work / "small.csv")):
        out[name] = work / f"{name}.zip"
        build_bundle(BuildSpec(title=name, catalogs=[CatalogInput(name, source)]), out[name])
    return out


def _composed(storage: Any, link: str, bid: str, expected: bytes) -> None:
    """The handle's first download streams the zip and starts its composition; wait (bounded) for the object."""
    status, headers, body = _get(link, follow=False)
    assert (status, "Location" in headers, body == expected) == (200, False, True)
    deadline = time.monotonic() + 120
    while not storage.exists(f"handles/{bid}/whole.zip"):
        assert time.monotonic() < deadline, "the whole zip was not composed within 120 s"
        time.sleep(0.2)


def _parts(storage: Any, bid: str) -> bytes:
    handle = json.loads(storage.read_bytes(f"handles/{bid}/handle.json"))
    return b"".join(storage.read_bytes(key) for key, _ in handle["parts"])


def _push(url: str, path: Path) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{url}/api/v1/bundles",
        data=path.read_bytes(),
        method="POST",
        headers={"X-API-Key": KEY, "Content-Type": "application/zip"},
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


@pytest.fixture
def s3_service(s3_env, s3_bucket: str, start_service, tmp_path: Path) -> Any:
    storage = f"s3://{s3_bucket}/nbpack"
    env = service_env(storage, KEY, cache_dir=str(tmp_path / "cache"), whole_zip_min_bytes=str(THRESHOLD))
    env.update({k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")})
    env["NBPACK_S3_ENDPOINT"] = s3_env.endpoint
    return start_service(env), open_storage(storage, endpoint_url=s3_env.endpoint), s3_env.endpoint


def test_a_big_zip_redirects_to_its_whole_object(s3_service: Any, bundles: dict[str, Path], tmp_path: Path) -> None:
    svc, storage, endpoint = s3_service
    created = _push(svc.url, bundles["big"])
    bid, link = created["id"], created["links"]["download"]
    handle = json.loads(storage.read_bytes(f"handles/{bid}/handle.json"))
    assert any(size >= MIN_COPY for _, size in handle["parts"])  # a record is copied by range, not read
    expected = _parts(storage, bid)
    assert len(expected) >= THRESHOLD
    _composed(storage, link, bid, expected)

    status, headers, _ = _get(link, follow=False)
    assert status == 302
    location = headers["Location"]
    assert location.startswith(endpoint) and f"handles/{bid}/whole.zip" in location
    assert parse_qs(urlsplit(link).query)["t"][0] not in location  # the handle's token does not go to the store
    assert headers["Cache-Control"] == "private, no-store"
    assert headers["Referrer-Policy"] == "no-referrer"

    status, headers, body = _get(link)
    assert status == 200
    assert body == expected
    assert f'filename="{bid}.zip"' in headers["Content-Disposition"]
    saved = tmp_path / "got.zip"
    saved.write_bytes(body)
    with open_bundle(saved) as bf:
        assert check_bundle(bf) == []
    # Streamed through the API (never redirected: its API key must not follow a redirect), the same bytes.
    status, _, streamed = _get(f"{svc.url}/api/v1/bundles/{bid}/download", {"X-API-Key": KEY})
    assert (status, streamed == expected) == (200, True)

    # Range through the redirect (urllib keeps the header across it, as browsers and requests do).
    lo, hi = MIN_PART - 10, MIN_PART + 10
    status, headers, part = _get(link, {"Range": f"bytes={lo}-{hi}"})
    assert (status, part) == (206, expected[lo : hi + 1])
    assert headers["Content-Range"] == f"bytes {lo}-{hi}/{len(expected)}"
    # The client's pull (urllib, no API key) follows the redirect.
    assert pull(link, tmp_path / "pulled.zip").read_bytes() == expected


def test_a_deleted_handle_gets_no_url(s3_service: Any, bundles: dict[str, Path]) -> None:
    svc, storage, _ = s3_service
    created = _push(svc.url, bundles["big"])
    bid, link = created["id"], created["links"]["download"]
    _composed(storage, link, bid, _parts(storage, bid))
    status, headers, _ = _get(link, follow=False)
    assert status == 302
    old_url = headers["Location"]
    assert storage.exists(f"handles/{bid}/whole.zip")
    req = urllib.request.Request(f"{svc.url}/api/v1/bundles/{bid}", method="DELETE", headers={"X-API-Key": KEY})
    with urllib.request.urlopen(req, timeout=60):
        pass
    status, headers, body = _get(link, follow=False)
    # The service's answer to any link of a deleted handle (capabilities.py): refused, and no URL.
    assert status == 403 and "Location" not in headers
    assert json.loads(body)["error"] == "token_revoked"
    # The delete swept the whole zip with the handle: a URL handed out before it no longer gets the bytes.
    assert not storage.exists(f"handles/{bid}/whole.zip")
    assert _get(old_url)[0] == 404


def test_a_small_zip_is_streamed(s3_service: Any, bundles: dict[str, Path]) -> None:
    svc, storage, _ = s3_service
    created = _push(svc.url, bundles["small"])
    status, headers, body = _get(created["links"]["download"], follow=False)
    assert status == 200 and "Location" not in headers
    assert body == _parts(storage, created["id"])
    time.sleep(1)  # a composition, had one started, would have had time to show
    assert not storage.exists(f"handles/{created['id']}/whole.zip")


def test_a_local_folder_service_streams_big_zips(start_service, bundles: dict[str, Path], tmp_path: Path) -> None:
    svc = start_service(
        service_env(str(tmp_path / "store"), KEY, cache_dir=str(tmp_path / "cache"), whole_zip_min_bytes="1")
    )
    created = _push(svc.url, bundles["big"])
    status, headers, body = _get(created["links"]["download"], follow=False)
    assert status == 200 and "Location" not in headers
    assert len(body) == int(headers["Content-Length"]) >= THRESHOLD
    assert not (tmp_path / "store" / "handles" / created["id"] / "whole.zip").exists()


def test_compose_mixes_uploaded_and_copied_parts(s3_storage: Any) -> None:
    """Sources small, big, small ones past FLUSH then big, a small tail: the composed object is their concatenation."""
    rng = np.random.default_rng(2)
    sizes = [100, MIN_COPY + 3, 3 << 20, 10 << 20, 4 << 20, MIN_COPY + (1 << 20), 0, 50]
    sources, whole = [], b""
    for i, size in enumerate(sizes):
        data = rng.bytes(size)
        s3_storage.put_bytes(f"src/{i}", data)
        sources.append((f"src/{i}", size))
        whole += data
    info = s3_storage.compose("out/whole", sources)
    assert info is not None and info.size == len(whole)
    assert s3_storage.read_bytes("out/whole") == whole
    # A failed compose (a source missing) leaves no object and raises.
    with pytest.raises(NotFound):
        s3_storage.compose("out/broken", [*sources[:2], ("src/missing", MIN_COPY)])
    assert not s3_storage.exists("out/broken")
