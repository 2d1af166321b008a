"""Issue 12, many users on one service: handles, tenants, revocation, quotas, the long-lived git URL, retention.

Each test runs the real gunicorn service on a real SeaweedFS bucket (tests/fixtures), with the runtime copied into
bundles doing the return uploads and real git (and nbgitpuller's own pull code) doing the clones and fetches.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from nbpack import clock
from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from nbpack.client import Client, ServiceError
from nbpack.config import load_config
from nbpack.hub import links
from nbpack.service import quota
from nbpack.service.core import Service
from nbpack.service.gc import collect
from nbpack.service.handles import CreateRequest
from nbpack.service.recent import TTL
from nbpack.store.backends import open_storage
from tests.fixtures.service import service_env
from tests.helpers import RUNTIME_PREAMBLE, make_app, make_config

KEY_A, KEY_B = "key-prod-" + secrets.token_hex(8), "key-test-" + secrets.token_hex(8)
SECRET = secrets.token_urlsafe(32)

# argv: bundle folder, value, status ("completed"/"failed"). Runs the runtime's own finish() and upload.
RUN = (
    RUNTIME_PREAMBLE
    + """\
folder, value, status = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
rt = load_runtime(folder)
rt.start(folder)
rt.save_output(b"same file every run\\n", "result.txt")
rt.save_value("answer", value)
os.environ["NBPACK_RETURN_PATH"] = sys.argv[4]
rt.finish(upload=True, status=status)
"""
)


def _http(
    url: str, method: str = "GET", headers: dict | None = None, data: bytes | None = None, timeout: float = 120
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _json_error(body: bytes) -> str:
    doc = json.loads(body)
    assert set(doc) == {"error", "message"} and doc["message"], doc
    return doc["error"]


@pytest.fixture
def s3_url(s3_bucket: str) -> str:
    return f"s3://{s3_bucket}/nbpack"


def _env(s3_url: str, tmp_path: Path, name: str = "cache", **extra: str) -> dict[str, str]:
    env = service_env(
        s3_url, f"esap-prod={KEY_A},esap-test={KEY_B}", secret_key=SECRET, cache_dir=str(tmp_path / name), **extra
    )
    return env


def _stored_bytes(s3_url: str, endpoint: str) -> dict[str, int]:
    storage = open_storage(s3_url, endpoint_url=endpoint)
    return {info.key: info.size for info in storage.list("")}


def _unpack(download_url: str, folder: Path) -> dict:
    status, data = _http(download_url)
    assert status == 200, data[:200]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        zf.extractall(folder)
    return json.loads((folder / "nbpack.json").read_text())


def _finish(
    folder: Path, value: object, out: Path, status: str = "completed", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The runtime's finish() + upload in a fresh process, as a kernel of the bundle in ``folder`` runs them."""
    return subprocess.run(
        [sys.executable, "-c", RUN, str(folder), json.dumps(value), status, str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
        env=env,
    )


def _run_return(folder: Path, value: object, out: Path, status: str = "completed") -> tuple[str, str]:
    """``_finish`` that must succeed; (return id, its stdout)."""
    proc = _finish(folder, value, out, status)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(out) as zf:
        return json.loads(zf.read("nbpack-return.json"))["id"], proc.stdout


def _small_request(title: str = "Shared selection", **extra: object) -> dict:
    return {
        "title": title,
        "catalogs": [{"name": "stars", "rows": [{"id": 9007199254740993, "mag": 1.5}, {"id": 2, "mag": None}]}],
        **extra,
    }


# ---------------------------------------------------------------- handles over shared content, two tenants


def test_two_tenants_same_100mb_content_stored_once_and_isolated(s3_url, s3_env, start_service, tmp_path):
    table = pa.table({"flux": pa.array(np.random.default_rng(12).random(14_000_000))})
    built = tmp_path / "big.zip"
    build_bundle(BuildSpec(title="Big shared content", catalogs=[CatalogInput("big", table)]), built)
    one = built.stat().st_size
    assert one > 100 * 10**6
    svc = start_service(_env(s3_url, tmp_path), workers=2, threads=4)
    a, b = Client(svc.url, KEY_A), Client(svc.url, KEY_B)
    handles = [a.push(built, owner="alice") for _ in range(5)] + [b.push(built, owner="bob") for _ in range(5)]
    ids = [h["id"] for h in handles]
    assert len(set(ids)) == 10 and {h["content_id"] for h in handles} == {
        json.loads(zipfile.ZipFile(built).read("nbpack.json"))["id"]
    }
    stored = _stored_bytes(s3_url, s3_env.endpoint)
    total = sum(stored.values())
    print(f"10 handles of one {one}-byte bundle: {total} bytes stored ({total / one:.4f}x), {len(stored)} objects")
    assert total <= 1.1 * one, (total, one)
    assert sum(size for key, size in stored.items() if key.startswith("content/")) <= 1.01 * one

    # Each handle streams a complete zip of its own: own return endpoint and token, same content.
    zips = {}
    for h in (handles[0], handles[5]):
        status, data = _http(h["links"]["download"])
        assert status == 200 and len(data) > one
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            assert zf.testzip() is None
            zips[h["id"]] = (data, json.loads(zf.read("nbpack.json")))
    (data_a, man_a), (_, man_b) = zips[ids[0]], zips[ids[5]]
    assert man_a["returns"]["token"] != man_b["returns"]["token"]
    assert man_a["returns"]["endpoint"].endswith(f"/{ids[0]}/returns")
    assert man_b["returns"]["endpoint"].endswith(f"/{ids[5]}/returns")
    start, end = one // 2, one // 2 + 5 * 2**20
    status, part = _http(handles[0]["links"]["download"], headers={"Range": f"bytes={start}-{end}"})
    assert status == 206 and part == data_a[start : end + 1]

    # Tenant isolation: the other tenant's id is a JSON 404 on every route, exactly like a missing one.
    rid = "r-" + "0" * 24
    routes = [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("GET", "/links"),
        ("GET", "/hubs"),
        ("GET", "/download"),
        ("GET", "/returns"),
        ("GET", f"/returns/{rid}"),
        ("GET", f"/returns/{rid}/download"),
        ("GET", f"/returns/{rid}/files/outputs/x"),
        ("GET", f"/returns/{rid}/notebook.html"),
    ]
    missing = "h-" + "0" * 24
    for method, tail in routes:
        for target in (ids[0], missing):
            status, body = _http(
                f"{svc.url}/api/v1/bundles/{target}{tail}",
                method,
                {"X-API-Key": KEY_B, "Content-Type": "application/json"},
                b'{"expires_in": 3600}' if method == "PATCH" else None,
            )
            assert (status, _json_error(body)) == (404, "not_found"), (method, tail, target)
    assert a.get(ids[0])["handle"]["id"] == ids[0]  # B's DELETE did nothing

    # Listing: the tenant's own handles, per owner, newest first, paginated.
    page1 = a.list(owner="alice", limit=3)
    page2 = a.list(owner="alice", limit=3, cursor=page1["next"])
    listed = [h["id"] for h in page1["bundles"] + page2["bundles"]]
    assert listed == ids[4::-1] and page2["next"] is None
    assert {h["id"] for h in b.list()["bundles"]} == set(ids[5:])
    assert a.list(owner="bob")["bundles"] == []


def test_same_content_two_users_returns_never_mix_and_runs_never_collapse(s3_url, start_service, tmp_path):
    svc = start_service(_env(s3_url, tmp_path, webhook_secrets=f"esap-prod={secrets.token_urlsafe(16)}"))
    a = Client(svc.url, KEY_A)
    first = a.create(_small_request(owner="alice", callback_url="https://esap.example.org/hook/alice"))
    second = a.create(_small_request(owner="carol", callback_url="https://esap.example.org/hook/carol"))
    assert first["id"] != second["id"] and first["content_id"] == second["content_id"]
    storage = open_storage(s3_url, endpoint_url=os.environ["NBPACK_S3_ENDPOINT"])
    state = {h["id"]: json.loads(storage.read_bytes(f"handles/{h['id']}/handle.json")) for h in (first, second)}
    assert state[first["id"]]["callback_url"].endswith("/alice") and state[second["id"]]["callback_url"].endswith(
        "/carol"
    )
    folder = tmp_path / "alice"
    manifest = _unpack(first["links"]["download"], folder)
    rid1, _ = _run_return(folder, 1, tmp_path / "r1.zip")
    rid2, _ = _run_return(folder, 2, tmp_path / "r2.zip")  # same files, another saved value
    rid3, _ = _run_return(folder, 1, tmp_path / "r3.zip", status="failed")
    assert len({rid1, rid2, rid3}) == 3
    # Listed oldest first by storage time, which has one-second precision: three quick uploads may tie.
    assert sorted(r["id"] for r in a.returns(first["id"])) == sorted([rid1, rid2, rid3])
    assert a.returns(second["id"]) == []
    # Re-sending a stored return is idempotent: 200, same id, nothing added.
    token = manifest["returns"]["token"]
    status, body = _http(
        manifest["returns"]["endpoint"],
        "POST",
        {"Authorization": f"Bearer {token}", "Content-Type": "application/zip"},
        (tmp_path / "r1.zip").read_bytes(),
    )
    assert status == 200 and json.loads(body)["id"] == rid1
    # The first user's token is not the second user's: it cannot post to the other handle.
    status, body = _http(
        f"{svc.url}/api/v1/bundles/{second['id']}/returns",
        "POST",
        {"Authorization": f"Bearer {token}", "Content-Type": "application/zip"},
        (tmp_path / "r1.zip").read_bytes(),
    )
    assert (status, _json_error(body)) == (403, "token_bundle")


# ---------------------------------------------------------------- revocation, on every replica


def test_delete_revokes_every_token_on_every_replica_and_recreate_gets_new_ids(s3_url, start_service, tmp_path):
    one = start_service(_env(s3_url, tmp_path, "cache-1", return_ttl="3600"))
    two = start_service(_env(s3_url, tmp_path, "cache-2", return_ttl="3600"))
    a = Client(one.url, KEY_A)
    created = a.create({**_small_request(), "expires_in": 200 * 86400})
    hid = created["id"]
    folder = tmp_path / "unpacked"
    manifest = _unpack(created["links"]["download"], folder)
    # The return token never outlives NBPACK_RETURN_TTL, whatever expires_in asked for.
    claims = links.check_token([SECRET], manifest["returns"]["token"], "return", hid)
    assert claims["exp"] <= time.time() + 3600 + 5
    rid, _ = _run_return(folder, 1, tmp_path / "r.zip")
    # Replica two serves the handle's git repository and a return file: both now in its cache.
    clone = tmp_path / "clone"
    git_two = created["links"]["git"].replace(one.url, two.url)
    subprocess.run(["git", "clone", "--depth", "1", git_two, str(clone)], check=True, capture_output=True, timeout=120)
    assert (clone / "nbpack.json").is_file()
    Client(two.url, KEY_A).return_file(hid, rid, "outputs/result.txt", tmp_path / "result.txt")
    Client(one.url, KEY_A).return_file(hid, rid, "outputs/result.txt", tmp_path / "result1.txt")
    assert (tmp_path / "cache-2" / "git" / f"{hid}.git").is_dir()
    assert (tmp_path / "cache-1" / "returns" / hid).is_dir()

    a.delete(hid)
    assert not (tmp_path / "cache-1" / "returns" / hid).exists()  # this replica's caches, at once
    old = {
        "landing": created["links"]["landing"],
        "download": created["links"]["download"],
        "git": created["links"]["git"] + "/info/refs?service=git-upload-pack",
    }
    for replica in (one, two):
        for name, url in old.items():
            status, body = _http(url.replace(one.url, replica.url))
            if (name, replica) == ("git", two) and status != 403:
                # The git scope's handle is remembered for recent.TTL (1 s) per worker (a lazy read's burst of
                # Range requests reads it once); a replica that never saw the delete refuses within that second.
                deadline = time.monotonic() + TTL + 5
                while status != 403 and time.monotonic() < deadline:
                    time.sleep(0.1)
                    status, body = _http(url.replace(one.url, replica.url))
            assert (status, _json_error(body)) == (403, "token_revoked"), (name, replica.url)
        status, body = _http(
            manifest["returns"]["endpoint"].replace(one.url, replica.url),
            "POST",
            {"Authorization": f"Bearer {manifest['returns']['token']}", "Content-Type": "application/zip"},
            (tmp_path / "r.zip").read_bytes(),
        )
        assert (status, _json_error(body)) == (403, "token_revoked")
    fetch = subprocess.run(["git", "-C", str(clone), "fetch", "origin"], capture_output=True, text=True, timeout=120)
    assert fetch.returncode != 0 and "403" in fetch.stderr
    # The same content again: a new handle, new tokens; the old ones stay dead against it as well.
    again = a.create({**_small_request(), "expires_in": 200 * 86400})
    assert again["id"] != hid and again["content_id"] == created["content_id"]
    old_token = created["links"]["landing"].split("t=")[1]
    status, body = _http(f"{one.url}/b/{again['id']}?t={old_token}")
    assert (status, _json_error(body)) == (403, "token_bundle")
    assert _http(again["links"]["landing"])[0] == 200
    # Replica two drops its cached repository of the deleted handle on its next gc sweep.
    cfg = load_config(
        {"NBPACK_PUBLIC_URL": "http://localhost"}
        | _env(s3_url, tmp_path, "cache-2")
        | {"NBPACK_S3_ENDPOINT": os.environ["NBPACK_S3_ENDPOINT"]}
    )
    report = collect(Service(cfg))
    assert str(tmp_path / "cache-2" / "git" / f"{hid}.git") in report.cache
    assert not (tmp_path / "cache-2" / "git" / f"{hid}.git").exists()


# ---------------------------------------------------------------- quotas


def test_return_quotas_refuse_cleanly_and_retries_stay_idempotent(s3_url, start_service, tmp_path):
    svc = start_service(_env(s3_url, tmp_path, max_returns_per_bundle="2"))
    a = Client(svc.url, KEY_A)
    created = a.create(_small_request())
    folder = tmp_path / "unpacked"
    manifest = _unpack(created["links"]["download"], folder)
    r1, _ = _run_return(folder, 1, tmp_path / "r1.zip")
    _run_return(folder, 2, tmp_path / "r2.zip")
    proc = _finish(folder, 3, tmp_path / "r3.zip")
    assert "HTTP 429" in proc.stdout, proc.stdout
    headers = {"Authorization": f"Bearer {manifest['returns']['token']}", "Content-Type": "application/zip"}
    status, body = _http(manifest["returns"]["endpoint"], "POST", headers, (tmp_path / "r3.zip").read_bytes())
    assert (status, _json_error(body)) == (429, "return_quota")
    # A retry of a stored return still answers 200 on a full quota.
    status, body = _http(manifest["returns"]["endpoint"], "POST", headers, (tmp_path / "r1.zip").read_bytes())
    assert status == 200 and json.loads(body)["id"] == r1
    assert len(a.returns(created["id"])) == 2
    storage = open_storage(s3_url, endpoint_url=os.environ["NBPACK_S3_ENDPOINT"])
    assert len({k.key.split("/")[2] for k in storage.list(f"returns/{created['id']}/")}) == 2  # nothing half-stored

    # Byte quota per handle: the first return fits, the second does not.
    size = (tmp_path / "r1.zip").stat().st_size
    svc2 = start_service(_env(s3_url, tmp_path, "cache-b", max_return_bytes_per_bundle=str(size + size // 2)))
    b = Client(svc2.url, KEY_B)
    other = b.create(_small_request("Byte quota"))
    folder2 = tmp_path / "unpacked2"
    man2 = _unpack(other["links"]["download"], folder2)
    _run_return(folder2, 1, tmp_path / "q1.zip")
    _run_return(folder2, 2, tmp_path / "q2.zip")
    h2 = {"Authorization": f"Bearer {man2['returns']['token']}", "Content-Type": "application/zip"}
    status, body = _http(man2["returns"]["endpoint"], "POST", h2, (tmp_path / "q2.zip").read_bytes())
    assert (status, _json_error(body)) == (413, "return_bytes_quota")
    assert len(b.returns(other["id"])) == 1


def test_tenant_byte_quota_refuses_create_and_stores_nothing(s3_url, s3_env, start_service, tmp_path):
    probe = start_service(_env(s3_url, tmp_path, "cache-probe"))
    first = Client(probe.url, KEY_A).create(_small_request())
    size = first and Client(probe.url, KEY_A).get(first["id"])["handle"]["bytes"]
    probe.stop()
    svc = start_service(_env(s3_url, tmp_path, tenant_quota_bytes=str(int(size * 1.5))))
    a, b = Client(svc.url, KEY_A), Client(svc.url, KEY_B)
    before = _stored_bytes(s3_url, s3_env.endpoint)
    with pytest.raises(ServiceError) as err:
        a.create(_small_request())
    assert (err.value.http_status, err.value.code) == (413, "tenant_quota")
    assert _stored_bytes(s3_url, s3_env.endpoint) == before
    assert b.create(_small_request())["created"] is True  # the other tenant's quota is its own


# ---------------------------------------------------------------- a re-click after the landing link expired


NBGITPULLER = """\
import sys
from nbgitpuller.pull import GitPuller
for line in GitPuller(sys.argv[1], sys.argv[2], branch="main", depth=1).pull():
    print(line, end="")
"""


def test_reclick_after_link_expiry_fetches_the_old_origin(s3_url, start_service, tmp_path):
    svc = start_service(_env(s3_url, tmp_path, link_ttl="3"))
    a = Client(svc.url, KEY_A)
    created = a.create(_small_request("Re-click"))
    target = tmp_path / "home" / "re-click"
    target.parent.mkdir()
    first = subprocess.run(
        [sys.executable, "-c", NBGITPULLER, created["links"]["git"], str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=target.parent,
    )
    assert first.returncode == 0, first.stderr
    origin = subprocess.run(
        ["git", "-C", str(target), "remote", "get-url", "origin"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert origin == created["links"]["git"]
    time.sleep(4)
    status, body = _http(created["links"]["landing"])
    assert (status, _json_error(body)) == (403, "token_expired")  # the first link is dead ...
    fresh = a.links(created["id"])
    assert fresh["git"] == origin  # ... a fresh link names the same repository
    (target / "my-notes.txt").write_text("user work\n")
    again = subprocess.run(
        [sys.executable, "-c", NBGITPULLER, fresh["git"], str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=target.parent,
    )
    assert again.returncode == 0, again.stderr  # nbgitpuller's update: git fetch of the saved origin
    plain = subprocess.run(["git", "-C", str(target), "fetch", "origin"], capture_output=True, text=True, timeout=60)
    assert plain.returncode == 0, plain.stderr
    assert (target / "my-notes.txt").read_text() == "user work\n"
    a.delete(created["id"])
    gone = subprocess.run(["git", "-C", str(target), "fetch", "origin"], capture_output=True, text=True, timeout=60)
    assert gone.returncode != 0 and "403" in gone.stderr  # revoked with the handle


# ---------------------------------------------------------------- lifetime and retention


def test_handle_lifetime_extend_expire_and_gc(s3_url, s3_env, start_service, tmp_path):
    svc = start_service(_env(s3_url, tmp_path, handle_ttl="10", gc_grace="0"))
    a = Client(svc.url, KEY_A)
    kept = a.create(_small_request("Kept"))
    summary = a.extend(kept["id"], 3600)
    assert summary["expires"] > kept["handle_expires"]
    with pytest.raises(ServiceError) as err:
        a.extend(kept["id"], 10)
    assert err.value.code == "invalid_input"
    dropped = a.create(_small_request("Dropped"))
    expires = datetime.fromisoformat(dropped["handle_expires"].replace("Z", "+00:00"))
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 1.5)
    assert _http(dropped["links"]["landing"])[0] == 403
    with pytest.raises(ServiceError) as err:
        a.get(dropped["id"])
    assert err.value.http_status == 404
    assert _http(kept["links"]["landing"])[0] == 200
    env = _env(s3_url, tmp_path, "cache-gc", handle_ttl="10", gc_grace="0")
    gc_env, nbpack = {**os.environ, **env}, str(Path(sys.executable).parent / "nbpack")
    dry = subprocess.run([nbpack, "gc", "--dry-run"], capture_output=True, text=True, env=gc_env, timeout=120)
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert planned["handles"] == [dropped["id"]] and planned["dry_run"] is True
    assert _stored_bytes(s3_url, s3_env.endpoint).get(f"handles/{dropped['id']}/handle.json")
    done = subprocess.run([nbpack, "gc"], capture_output=True, text=True, env=gc_env, timeout=120)
    assert done.returncode == 0, done.stderr
    keys = _stored_bytes(s3_url, s3_env.endpoint)
    # All of it goes but the ledger's tombstone (service/quota.py): a return upload that checked its token before the
    # handle expired is refused at its ledger write; gc removes the tombstone once older than PENDING_STALE.
    assert [k for k in keys if dropped["id"] in k] == [f"quota/{dropped['id']}/returns.json"]
    tomb = open_storage(s3_url, endpoint_url=s3_env.endpoint).read_bytes(f"quota/{dropped['id']}/returns.json")
    assert json.loads(tomb)["deleted"]
    assert _http(kept["links"]["download"])[0] == 200  # the shared content stays: kept still references it
    a.delete(kept["id"])
    collect(Service(load_config({"NBPACK_PUBLIC_URL": "http://localhost"} | env)))
    assert not any(k.startswith("content/") for k in _stored_bytes(s3_url, s3_env.endpoint))


def test_gc_racing_creates_and_uploads_loses_nothing(s3_url, s3_env, start_service, tmp_path):
    # Grace 1 s: content left by the last round is already fair game while the next round reuses it.
    env = _env(s3_url, tmp_path, gc_grace="1")
    svc = start_service(env, workers=2, threads=4)
    a = Client(svc.url, KEY_A)
    gc_service = Service(
        load_config({"NBPACK_PUBLIC_URL": "http://localhost"} | env | {"NBPACK_CACHE_DIR": str(tmp_path / "gc-cache")})
    )
    stop, runs, errors = threading.Event(), [], []

    def sweep() -> None:
        while not stop.is_set():
            try:
                runs.append(collect(gc_service))
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

    def check(h: dict) -> None:
        status, data = _http(h["links"]["download"])
        assert status == 200, h["id"]
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            assert zf.testzip() is None and zf.read("catalogs/stars.parquet")

    thread = threading.Thread(target=sweep, daemon=True)
    thread.start()
    survivor = None
    try:
        for _ in range(4):
            if survivor:
                a.delete(survivor["id"])  # its content is now unreferenced; after the grace, gc goes for it ...
            time.sleep(1.5)
            made = [a.create(_small_request("Raced")) for _ in range(3)]  # ... while these reuse it
            for h in made:
                check(h)
            for h in made[:-1]:
                a.delete(h["id"])
            survivor = made[-1]
        folder = tmp_path / "unpacked"
        _unpack(survivor["links"]["download"], folder)
        rid, _ = _run_return(folder, 1, tmp_path / "r.zip")
        time.sleep(1.5)
    finally:
        stop.set()
        thread.join(timeout=120)
    assert not errors, errors
    assert len(runs) >= 2 and any(r.content for r in runs)  # the sweeps did remove content meanwhile
    check(survivor)
    assert [r["id"] for r in a.returns(survivor["id"])] == [rid]


# ---------------------------------------------------------------- the API contract (openapi), in process


def test_tenant_routes_answer_as_the_openapi_document_says(tmp_path):
    from tests.openapi_check import check_response

    app = make_app(tmp_path, secret_key=SECRET, api_keys=f"esap-prod={KEY_A},esap-test={KEY_B},bare-key-{KEY_A}")
    c = app.test_client()
    ha, hb = {"X-API-Key": KEY_A}, {"X-API-Key": KEY_B}
    made = []
    for owner in ("alice", "alice", "bob"):
        resp = c.post("/api/v1/bundles", json=_small_request(owner=owner), headers=ha)
        made.append(check_response(resp))
        assert resp.status_code == 201
    resp = c.post("/api/v1/bundles", json=_small_request(owner="x" * 201), headers=ha)
    assert resp.status_code == 400 and check_response(resp)["error"] == "invalid_input"
    page = check_response(c.get("/api/v1/bundles?owner=alice&limit=1", headers=ha))
    rest = check_response(c.get(f"/api/v1/bundles?owner=alice&limit=1&cursor={page['next']}", headers=ha))
    assert [b["id"] for b in page["bundles"] + rest["bundles"]] == [made[1]["id"], made[0]["id"]]
    assert rest["next"] is None
    for bad in ("limit=0", "limit=x", "cursor=..%2F"):
        resp = c.get(f"/api/v1/bundles?{bad}", headers=ha)
        assert resp.status_code == 400 and check_response(resp)["error"] == "invalid_input", bad
    assert check_response(c.get("/api/v1/bundles", headers=hb)) == {"bundles": [], "next": None}
    # the bare key is tenant "default": it sees none of esap-prod's handles either
    assert check_response(c.get("/api/v1/bundles", headers={"X-API-Key": f"bare-key-{KEY_A}"}))["bundles"] == []
    hid = made[0]["id"]
    resp = c.patch(f"/api/v1/bundles/{hid}", json={"expires_in": 200 * 86400}, headers=ha)
    assert check_response(resp)["expires"] > made[0]["handle_expires"]
    for method in ("get", "patch", "delete"):
        resp = getattr(c, method)(f"/api/v1/bundles/{hid}", json={"expires_in": 3600}, headers=hb)
        assert resp.status_code == 404 and check_response(resp)["error"] == "not_found", method
    got = check_response(c.get(f"/api/v1/bundles/{hid}", headers=ha))
    assert got["handle"]["owner"] == "alice" and got["id"] == hid and got["content_id"] == made[0]["content_id"]


def test_returns_past_retention_are_collected_and_usage_released(tmp_path):
    cfg = make_config(tmp_path, return_retention="1")
    svc = Service(cfg)
    built = tmp_path / "b.zip"
    build_bundle(BuildSpec(title="Retained", catalogs=[CatalogInput("t", [{"a": 1}])]), built)
    stored = svc.handles.store(built, CreateRequest("http://127.0.0.1:9"))
    handle = svc.handles.load(stored.id)
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(io.BytesIO(b"".join(svc.members.zip_chunks(handle)))) as zf:
        assert zf.testzip() is None
        zf.extractall(folder)
    proc = _finish(folder, 1, tmp_path / "r.zip", env={**os.environ, "NBPACK_NO_UPLOAD": "1"})
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "r.zip", "rb") as f:
        summary, created = svc.returns.ingest(handle, f)
    assert created and svc.returns.list(handle)
    used = quota.tenant_usage(svc.storage, "default")
    assert collect(svc, dry_run=True).returns == []  # not yet a second old
    with clock.use(lambda: time.time() + 2):  # two seconds on, without waiting for them
        assert collect(svc, dry_run=True).returns == [f"{stored.id}/{summary['id']}"]
        assert svc.returns.list(handle)  # the dry run removed nothing
        assert collect(svc).returns == [f"{stored.id}/{summary['id']}"]
    assert svc.returns.list(handle) == [] and quota.tenant_usage(svc.storage, "default") < used
    # and its count and bytes are free again in the handle's quota ledger
    assert json.loads(svc.storage.read_bytes(f"quota/{stored.id}/returns.json"))["returns"] == {}
    assert svc.handles.load(stored.id).id == stored.id  # the handle itself stays


def test_service_sweep_removes_expired_handles_on_its_own(tmp_path):
    app = make_app(tmp_path, secret_key=SECRET, api_keys=KEY_A, handle_ttl="2", gc_interval="1", gc_grace="0")
    try:
        resp = app.test_client().post("/api/v1/bundles", json=_small_request(), headers={"X-API-Key": KEY_A})
        hid = resp.get_json()["id"]
        assert (tmp_path / "store" / "handles" / hid / "handle.json").is_file()
        content = tmp_path / "store" / "content"

        def swept() -> bool:
            # The handle goes first and its content later in the same sweep: wait for both.
            gone = not (tmp_path / "store" / "handles" / hid).exists()
            return gone and (not content.exists() or not any(content.iterdir()))

        # The handle's 2 s lifetime passed at once (the clock, not a wait); the sweep every 1 s finds it.
        with clock.use(lambda: time.time() + 3):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not swept():
                time.sleep(0.1)
        assert not (tmp_path / "store" / "handles" / hid).exists()
        assert not content.exists() or not any(content.iterdir())
    finally:
        app.extensions["nbpack-gc"].stop.set()
