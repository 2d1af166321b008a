"""Faults and load against real gunicorn services, real SeaweedFS and real kernels.

- the service SIGKILLed in the middle of a large return upload: nothing half-written shows, the runtime's own
  ``upload()`` retries against the restarted service, the return arrives exactly once with the same sha256;
- SeaweedFS stopped and started under downloads and uploads: every transfer completes whole or fails in a way the
  client sees; the service recovers by itself;
- 20 returns at once, one return 5 times at once, 200 concurrent downloads: all right, stored once, bounded RSS;
- a local-folder write SIGKILLed mid-way: the key is absent or whole, never partial.

Sizes are small by default; ``NBPACK_FAULT_SIZE=200MB`` runs the full-size return. Each test prints its figures.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from nbpack.local.execute import run_bundle
from nbpack.store.backends import LocalStorage, open_storage
from tests.fixtures.service import gunicorn_rss_kib, service_env
from tests.helpers import RUNTIME_PREAMBLE, UPLOAD_SCRIPT, template_notebook


def _parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([kmg]?)i?b?\s*", text.lower())
    if not m:
        raise ValueError(f"NBPACK_FAULT_SIZE={text!r}: give e.g. 32MB or 200MB")
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2)]


SIZE = _parse_size(os.environ.get("NBPACK_FAULT_SIZE", "32MB"))
DOWNLOAD_SIZE = max(1 << 20, SIZE // 16)  # the bundle 200 clients fetch at once
KEY = secrets.token_urlsafe(16)
SECRET = secrets.token_urlsafe(32)
MIB = 1 << 20

CELL = """\
import os
n = int(os.environ.get("NBPACK_FAULT_BYTES", "1024"))
with open("big.bin", "wb") as f:
    left = n
    while left > 0:
        f.write(os.urandom(min(left, 1 << 20)))
        left -= 1 << 20
nbpack_runtime.save_output("big.bin")
os.remove("big.bin")
nbpack_runtime.save_value("bytes", n)
"""

VARIANTS = (
    RUNTIME_PREAMBLE
    + """\
folder, out_dir, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(count):
    shutil.rmtree(folder + "/outputs", ignore_errors=True)
    rt = load_runtime(folder)
    rt.start(folder)
    rt.save_output(f"variant {i}\\n".encode(), "variant.txt")
    rt.save_value("variant", i)
    os.environ["NBPACK_RETURN_PATH"] = f"{out_dir}/r{i:02d}.zip"
    rt.finish(upload=False)
"""
)

WRITER = """\
import hashlib, random, sys, time
from nbpack.store.backends import LocalStorage

class Slow:
    def __init__(self, seed, chunks):
        self.rng, self.left = random.Random(seed), chunks
    def read(self, n=-1):
        if self.left == 0:
            return b""
        self.left -= 1
        time.sleep(0.01)
        return self.rng.randbytes(1 << 20)

LocalStorage(sys.argv[1]).put_stream(sys.argv[2], Slow(int(sys.argv[3]), int(sys.argv[4])))
"""


# -- helpers ------------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MIB):
            h.update(chunk)
    return h.hexdigest()


def _push(url: str, bundle: Path) -> dict:
    """Store a built bundle through the API (application/zip push)."""
    req = urllib.request.Request(
        f"{url}/api/v1/bundles",
        data=bundle.read_bytes(),
        method="POST",
        headers={"X-API-Key": KEY, "Content-Type": "application/zip"},
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.load(resp)


def _unpack_stored(download_url: str, folder: Path) -> dict:
    """The stored bundle (with its returns section) unpacked into ``folder``; its manifest."""
    with urllib.request.urlopen(download_url, timeout=60) as resp:
        data = resp.read()
    zpath = folder.with_suffix(".zip")
    zpath.write_bytes(data)
    with zipfile.ZipFile(zpath) as zf:
        zf.extractall(folder)
    return json.loads((folder / "nbpack.json").read_text())


def _post_return(manifest: dict, path: Path) -> int:
    """POST a return zip once; the HTTP status, or 0 when the connection failed."""
    returns = manifest["returns"]
    req = urllib.request.Request(
        returns["endpoint"],
        data=path.read_bytes(),
        method="POST",
        headers={"Authorization": f"Bearer {returns['token']}", "Content-Type": "application/zip"},
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as err:
        err.read()
        return err.code
    except OSError:
        return 0


def _list_returns(url: str, bid: str) -> list[dict]:
    req = urllib.request.Request(f"{url}/api/v1/bundles/{bid}/returns", headers={"X-API-Key": KEY})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.load(resp)["returns"]


def _download(url: str, expected: str, throttle: float = 0.0) -> str:
    """One download: 'ok' (whole, right sha256), 'short' (fewer bytes than Content-Length), 'error', or 'BAD'."""
    h, got = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            length = int(resp.headers["Content-Length"])
            while chunk := resp.read(MIB):
                h.update(chunk)
                got += len(chunk)
                if throttle:
                    time.sleep(throttle)
    except urllib.error.HTTPError:
        return "error"
    except Exception:  # noqa: BLE001 - an IncompleteRead or reset is a failure the client saw
        return "short" if got else "error"
    if got != length:
        return "short"
    return "ok" if h.hexdigest() == expected else "BAD"


class _Sampler:
    """Samples a service's total RSS every 50 ms in a thread; ``peak`` in KiB."""

    def __init__(self, master: int) -> None:
        self.master, self.peak, self._stop = master, 0, threading.Event()
        self.base = gunicorn_rss_kib(master)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, gunicorn_rss_kib(self.master))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _storage_keys(url: str, prefix: str, endpoint: str | None = None) -> list[str]:
    return [i.key for i in open_storage(url, endpoint_url=endpoint).list(prefix)]


# -- module fixtures: one kernel run, one runtime process for the variants ----------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def built(work: Path) -> Path:
    """A small bundle whose notebook saves NBPACK_FAULT_BYTES random bytes as an output."""
    csv = work / "sources.csv"
    csv.write_text("id,flux\n1,1.5\n2,2.5\n")
    path = work / "bundle.zip"
    build_bundle(
        BuildSpec(title="Faults", catalogs=[CatalogInput("sources", csv)], notebook=template_notebook(CELL)), path
    )
    return path


@pytest.fixture(scope="module")
def big_return(built: Path, work: Path) -> Path:
    """A real return bundle of about SIZE bytes: the bundle executed once in a real kernel."""
    os.environ["NBPACK_FAULT_BYTES"] = str(SIZE)
    try:
        result = run_bundle(built, work / "big-return.zip", timeout=600)
    finally:
        os.environ.pop("NBPACK_FAULT_BYTES", None)
    assert result.status == "completed", result.error
    assert result.return_path.stat().st_size > SIZE
    return result.return_path


@pytest.fixture(scope="module")
def variants(built: Path, work: Path) -> list[Path]:
    """26 distinct small return bundles of ``built``, each written by the runtime's own finish()."""
    folder = work / "variants-src"
    with zipfile.ZipFile(built) as zf:
        zf.extractall(folder)
    notebook = json.loads((folder / "nbpack.json").read_text())["payload"]["notebook"]
    out = work / "variants"
    out.mkdir()
    env = {**os.environ, "NBPACK_NOTEBOOK": str(folder / notebook), "NBPACK_NO_UPLOAD": "1"}
    subprocess.run(
        [sys.executable, "-c", VARIANTS, str(folder), str(out), "26"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    paths = sorted(out.glob("r*.zip"))
    assert len(paths) == 26
    return paths


@pytest.fixture(scope="module")
def big_bundle(work: Path) -> Path:
    """A bundle of about SIZE bytes: one catalog of incompressible random floats."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = work / "big.parquet"
    rows = max(1, SIZE // 8)
    pq.write_table(pa.table({"x": np.random.default_rng(1).random(rows)}), parquet, compression="none")
    path = work / "big-bundle.zip"
    build_bundle(BuildSpec(title="Big faults", catalogs=[CatalogInput("big", parquet)]), path)
    return path


def _stored_sha(created: dict, dest: Path) -> str:
    """sha256 of the stored bundle (the service adds a returns section), checked whole: valid zip, same id."""
    with urllib.request.urlopen(created["links"]["download"], timeout=120) as resp:
        dest.write_bytes(resp.read())
    with zipfile.ZipFile(dest) as zf:
        assert zf.testzip() is None
        assert json.loads(zf.read("nbpack.json"))["id"] == created["content_id"]
    return _sha256(dest)


def _return_id(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("nbpack-return.json"))["id"]


# -- the service killed mid-upload ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", "s3"])
def test_kill_service_mid_return_upload(
    backend: str, built: Path, big_return: Path, start_service, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    endpoint = None
    if backend == "local":
        storage = str(tmp_path / "store")
    else:
        storage = f"s3://{request.getfixturevalue('s3_bucket')}/nbpack"
        endpoint = request.getfixturevalue("s3_env").endpoint
    cache = tmp_path / "cache"
    # Direct uploads off: this is the POST of the whole zip killed mid-way (a 32 MiB output would go by presigned PUT).
    env = service_env(storage, KEY, secret_key=SECRET, cache_dir=str(cache), direct_upload_threshold="0")
    svc = start_service(env)
    created = _push(svc.url, built)
    bid = created["id"]
    folder = tmp_path / "unpacked"
    _unpack_stored(created["links"]["download"], folder)

    env = {**os.environ, "NBPACK_UPLOAD_ATTEMPTS": "12", "NBPACK_RETRY_DELAY": "0.5"}
    started = time.monotonic()
    uploader = subprocess.Popen(
        [sys.executable, "-c", UPLOAD_SCRIPT, str(folder), str(big_return)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Kill once the server has spooled a quarter of the upload (bounded wait).
        spooled, deadline = 0, time.monotonic() + 120
        while time.monotonic() < deadline and uploader.poll() is None:
            # Spooled in the cache, or (a folder store, the return's id announced) written beside its final file.
            staged = [*cache.glob("tmp/upload-*"), *(tmp_path / "store").glob("returns/**/.tmp-*")]
            sizes = []
            for p in staged:
                with contextlib.suppress(FileNotFoundError):  # committed or removed since the glob
                    sizes.append(p.stat().st_size)
            spooled = max(sizes, default=0)
            if spooled >= SIZE // 4:
                break
            time.sleep(0.005)
        assert spooled >= SIZE // 4, "the upload never reached the server"
        svc.kill()
        killed_at = time.monotonic() - started
        # Nothing of the interrupted upload is visible in storage.
        assert _storage_keys(storage, f"returns/{bid}/", endpoint) == []
        svc.start()
        out, err = uploader.communicate(timeout=600)
    finally:
        if uploader.poll() is None:
            uploader.kill()
            uploader.wait()
    assert uploader.returncode == 0, err[-2000:]
    answer = json.loads(next(line for line in out.splitlines() if line.startswith("ANSWER "))[7:])
    rid = _return_id(big_return)
    assert answer["id"] == rid

    listed = _list_returns(svc.url, bid)
    assert [r["id"] for r in listed] == [rid]
    assert sorted(_storage_keys(storage, f"returns/{bid}/", endpoint)) == [
        f"returns/{bid}/{rid}/manifest.json",
        f"returns/{bid}/{rid}/return.zip",
    ]
    stored = tmp_path / "stored.zip"
    open_storage(storage, endpoint_url=endpoint).download_to(f"returns/{bid}/{rid}/return.zip", stored)
    assert _sha256(stored) == _sha256(big_return)
    print(
        f"\nFAULT kill-mid-upload[{backend}]: {big_return.stat().st_size} B return, killed after "
        f"{spooled} B spooled at {killed_at:.2f}s, completed after {time.monotonic() - started:.2f}s, "
        f"1 return stored, bytes lost 0"
    )


# -- SeaweedFS stopped and started under transfers --------------------------------------------------------


@pytest.mark.slow
def test_seaweedfs_restart_during_transfers(
    s3_env,
    s3_bucket: str,
    built: Path,
    big_bundle: Path,
    big_return: Path,
    variants: list[Path],
    start_service,
    tmp_path: Path,
) -> None:
    storage = f"s3://{s3_bucket}/nbpack"
    svc = start_service(service_env(storage, KEY, secret_key=SECRET, cache_dir=str(tmp_path / "cache")))
    big = _push(svc.url, big_bundle)
    url, expected = big["links"]["download"], _stored_sha(big, tmp_path / "reference.zip")
    small = _push(svc.url, built)
    manifest = _unpack_stored(small["links"]["download"], tmp_path / "unpacked")

    outcomes: list[str] = []
    uploads: dict[Path, list[int]] = {}
    stop = threading.Event()
    lock = threading.Lock()

    def downloader() -> None:
        for _ in range(200):  # bounded
            if stop.is_set():
                return
            result = _download(url, expected, throttle=0.005)
            with lock:
                outcomes.append(result)
            if result != "ok":
                time.sleep(0.1)  # paces the outage loop so the counts mean something

    to_upload = [big_return, *variants[:6]]

    def uploader() -> None:
        for path in to_upload * 20:  # bounded
            if stop.is_set():
                return
            status = _post_return(manifest, path)
            with lock:
                uploads.setdefault(path, []).append(status)
            if status not in (200, 201):
                time.sleep(0.1)

    threads = [threading.Thread(target=downloader) for _ in range(3)] + [threading.Thread(target=uploader)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        s3_env.stop()
        time.sleep(2.0)
        s3_env.start()
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=300)
        if not s3_env.running:
            s3_env.start()

    # The same service process, not restarted, serves whole downloads again (bounded wait for recovery).
    recovered = None
    for _ in range(60):
        if _download(url, expected) == "ok":
            recovered = True
            break
        time.sleep(0.5)
    assert recovered, svc.log_tail()
    assert [_download(url, expected) for _ in range(3)] == ["ok"] * 3
    # Every return lands after the outage, as the runtime's retry would send it.
    for path in to_upload:
        assert _post_return(manifest, path) in (200, 201)

    assert "BAD" not in outcomes
    failed_downloads = [o for o in outcomes if o != "ok"]
    failed_uploads = [s for statuses in uploads.values() for s in statuses if s not in (200, 201)]
    assert all(s == 0 or s >= 500 for s in failed_uploads), failed_uploads
    assert failed_downloads or failed_uploads, "the outage touched no transfer: the fault was not injected"

    bid = small["id"]
    listed = {r["id"] for r in _list_returns(svc.url, bid)}
    assert listed == {_return_id(p) for p in to_upload}
    store = open_storage(storage, endpoint_url=s3_env.endpoint)
    for path in to_upload:
        rid = _return_id(path)
        stored = tmp_path / f"{rid}.zip"
        store.download_to(f"returns/{bid}/{rid}/return.zip", stored)
        assert _sha256(stored) == _sha256(path), f"{rid} stored differs from what was sent"
    assert svc.proc is not None and svc.proc.poll() is None  # never restarted
    print(
        f"\nFAULT seaweedfs-restart: downloads ok {outcomes.count('ok')}, short {outcomes.count('short')}, "
        f"error {outcomes.count('error')}, wrong 0; uploads ok "
        f"{sum(s in (200, 201) for v in uploads.values() for s in v)}, failed cleanly {len(failed_uploads)}; "
        f"{len(listed)} returns stored whole, bytes lost 0"
    )


# -- load: returns and downloads at once ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", "s3"])
def test_concurrent_returns_stored_once(
    backend: str, built: Path, variants: list[Path], start_service, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    endpoint = None
    if backend == "local":
        storage = str(tmp_path / "store")
    else:
        storage = f"s3://{request.getfixturevalue('s3_bucket')}/nbpack"
        endpoint = request.getfixturevalue("s3_env").endpoint
    svc = start_service(
        service_env(storage, KEY, secret_key=SECRET, cache_dir=str(tmp_path / "cache")), workers=2, threads=8
    )
    created = _push(svc.url, built)
    bid = created["id"]
    manifest = _unpack_stored(created["links"]["download"], tmp_path / "unpacked")
    twenty, same = variants[6:26], variants[0]

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(lambda p: _post_return(manifest, p), twenty))
    assert statuses == [201] * 20
    with ThreadPoolExecutor(5) as pool:
        repeated = list(pool.map(lambda _: _post_return(manifest, same), range(5)))
    assert sorted(repeated) == [200, 200, 200, 200, 201], repeated

    listed = [r["id"] for r in _list_returns(svc.url, bid)]
    expected = sorted(_return_id(p) for p in [*twenty, same])
    assert sorted(listed) == expected  # each exactly once
    keys = _storage_keys(storage, f"returns/{bid}/", endpoint)
    assert len(keys) == 2 * 21
    print(
        f"\nLOAD returns[{backend}]: 20 concurrent uploads all 201, same return x5 -> {sorted(repeated)}, "
        f"21 stored once"
    )


@pytest.mark.slow
def test_200_concurrent_downloads_bounded_memory(
    s3_env, s3_bucket: str, start_service, work: Path, tmp_path: Path
) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path / "dl.parquet"
    pq.write_table(pa.table({"x": np.random.default_rng(2).random(DOWNLOAD_SIZE // 8)}), parquet, compression="none")
    bundle = tmp_path / "dl.zip"
    build_bundle(BuildSpec(title="Download load", catalogs=[CatalogInput("dl", parquet)]), bundle)
    svc = start_service(
        service_env(f"s3://{s3_bucket}/nbpack", KEY, secret_key=SECRET, cache_dir=str(tmp_path / "cache")),
        workers=2,
        threads=8,
    )
    created = _push(svc.url, bundle)
    url, expected = created["links"]["download"], _stored_sha(created, tmp_path / "reference.zip")
    assert _download(url, expected) == "ok"  # warm the workers before the baseline

    sampler = _Sampler(svc.proc.pid)
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(50) as pool:
            results = list(pool.map(lambda _: _download(url, expected), range(200)))
    finally:
        sampler.stop()
    elapsed = time.monotonic() - started
    assert results == ["ok"] * 200, {r: results.count(r) for r in set(results)}
    growth = (sampler.peak - sampler.base) / 1024
    assert growth < 200, f"service RSS grew by {growth:.0f} MiB"
    print(
        f"\nLOAD downloads: 200 x {bundle.stat().st_size} B in {elapsed:.1f}s, all sha256 ok; service RSS "
        f"base {sampler.base / 1024:.0f} MiB, peak {sampler.peak / 1024:.0f} MiB (+{growth:.0f} MiB)"
    )


# -- local folder: a write killed mid-way -------------------------------------------------------------------


def _expected_sha(seed: int, chunks: int) -> str:
    import random

    rng, h = random.Random(seed), hashlib.sha256()
    for _ in range(chunks):
        h.update(rng.randbytes(MIB))
    return h.hexdigest()


def _kill_writer(root: Path, key: str, seed: int, chunks: int, at_bytes: int) -> int:
    """Run a LocalStorage.put_stream in a process and SIGKILL it once its temp file holds ``at_bytes``."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root), key, str(seed), str(chunks)])
    seen = 0
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            temps = [p.stat().st_size for p in root.rglob(".tmp-*") if p.is_file()]
            seen = max(temps, default=0)
            if seen >= at_bytes:
                break
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    return seen


def test_local_write_killed_midway_leaves_nothing_partial(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalStorage(root)
    chunks = 64
    kills = 0
    for seed, at in [(1, 1), (2, 16 * MIB), (3, 48 * MIB)]:
        seen = _kill_writer(root, f"bundles/b-{seed:024x}/bundle.zip", seed, chunks, at)
        assert 0 < seen < chunks * MIB, "the writer was not caught mid-way"
        kills += 1
    assert list(store.list("bundles/")) == []
    assert not any(store.exists(f"bundles/b-{s:024x}/bundle.zip") for s in (1, 2, 3))

    # Overwriting a whole object and dying mid-way keeps the old object whole.
    key = "bundles/b-000000000000000000000009/bundle.zip"
    subprocess.run([sys.executable, "-c", WRITER, str(root), key, "8", "8"], check=True, timeout=60)
    assert _sha256(root / key) == _expected_sha(8, 8)
    seen = _kill_writer(root, key, 9, chunks, 24 * MIB)
    kills += 1
    assert 0 < seen < chunks * MIB
    assert [i.key for i in store.list("bundles/")] == [key]
    assert _sha256(root / key) == _expected_sha(8, 8)
    leftovers = list(root.rglob(".tmp-*"))
    print(
        f"\nFAULT local-kill: {kills} writers SIGKILLed mid-write, 0 partial objects visible, "
        f"{len(leftovers)} unlisted .tmp- files left on disk"
    )


@pytest.mark.slow
def test_service_killed_mid_bundle_push_local(big_bundle: Path, start_service, tmp_path: Path) -> None:
    storage = tmp_path / "store"
    cache = tmp_path / "cache"
    svc = start_service(service_env(str(storage), KEY, secret_key=SECRET, cache_dir=str(cache)))
    statuses: list[int | str] = []

    def push() -> None:
        try:
            statuses.append(_push(svc.url, big_bundle)["created"])
        except Exception as exc:  # noqa: BLE001 - the kill is expected to break this request
            statuses.append(type(exc).__name__)

    thread = threading.Thread(target=push)
    thread.start()
    spooled, deadline = 0, time.monotonic() + 60
    while time.monotonic() < deadline and thread.is_alive():
        spooled = (
            max((p.stat().st_size for p in (cache / "tmp").glob("upload-*")), default=0)
            if (cache / "tmp").is_dir()
            else 0
        )
        if spooled >= SIZE // 4:
            break
        time.sleep(0.005)
    svc.kill()
    thread.join(timeout=60)
    assert spooled >= SIZE // 4 and statuses and statuses[0] is not True, (spooled, statuses)
    assert _storage_keys(str(storage), "handles/") == [] and _storage_keys(str(storage), "content/") == []

    svc.start()
    again = _push(svc.url, big_bundle)
    assert again["created"] is True
    # The stored copy carries a returns section, so its sha256 differs: check it is a whole, valid zip instead.
    with urllib.request.urlopen(again["links"]["download"], timeout=60) as resp:
        (tmp_path / "got.zip").write_bytes(resp.read())
    with zipfile.ZipFile(tmp_path / "got.zip") as zf:
        assert zf.testzip() is None
        assert json.loads(zf.read("nbpack.json"))["id"] == again["content_id"]
    stored = LocalStorage(storage)
    keys = [i.key for i in stored.list("handles/")]
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == [
        "handle.json",
        "head.bin",
        "manifest.json",
        "notebook.ipynb",
        "tail.bin",
    ]
    print(f"\nFAULT push-kill[local]: killed after {spooled} B spooled, nothing stored, re-push 201")
