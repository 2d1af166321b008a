"""Scale-out: three gunicorn replicas of the service on one SeaweedFS bucket behind Debian's nginx (round-robin).

One user's journey (landing page, git clone with real git, a ranged read of the big catalog through the files
endpoint, the return upload with the runtime's own ``upload()``) hops between replicas without an error; then one
replica is SIGKILLed in the middle of a run of clones, downloads and return uploads, the clients' retries finish
on the other two, and nothing is lost or duplicated.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nbpack.client import DOWNLOAD_ATTEMPTS, Client, pull
from nbpack.errors import UpstreamError
from nbpack.gitenv import git_env
from nbpack.hub.links import public_url
from nbpack.store.backends import open_storage
from tests.fixtures.nginx import UPSTREAM_HEADER, Nginx
from tests.fixtures.service import ServiceProcess, service_env
from tests.helpers import RUNTIME_PREAMBLE, UPLOAD_SCRIPT, serving

KEY = secrets.token_urlsafe(16)
ROWS = 300_000  # two columns of random doubles: a catalog of ~5 MiB, above the 4 MiB lazy threshold
GIT_ENV = {**git_env(), "HOME": "/nonexistent"}
CLIENT_ENV = {"NBPACK_RETRY_DELAY": "0.3", "NBPACK_UPLOAD_ATTEMPTS": "6"}

# argv: bundle folders; in each (seed = its position) one output of seeded bytes and the return zip, not sent.
MAKE_RETURNS = (
    RUNTIME_PREAMBLE
    + """\
for seed, folder in enumerate(sys.argv[1:]):
    rt = load_runtime(folder)
    rt.start(folder)
    rt.save_output(random.Random(seed).randbytes(200_000), "noise.bin")
    rt.save_value("seed", seed)
    print("PATH " + str(rt.finish(upload=False)), flush=True)
"""
)


# argv: thin bundle folder, the whole catalog as stored. Two columns read lazily through the service, compared.
LAZY_READ = (
    RUNTIME_PREAMBLE
    + """\
import pyarrow.parquet as pq
folder, whole = sys.argv[1], sys.argv[2]
rt = load_runtime(folder)
bundle = rt.start(folder)
got = bundle.catalog("big", columns=["id", "name"])
want = pq.read_table(whole, columns=["id", "name"])
same = all(got.column(c).equals(want.column(c)) for c in ("id", "name"))
print(f"EQUAL {same} {got.num_rows}", flush=True)
"""
)


@dataclass
class Cluster:
    replicas: list[ServiceProcess]
    lb: Nginx
    storage: str
    endpoint: str

    def upstream(self, replica: ServiceProcess) -> str:
        return f"127.0.0.1:{replica.port}"


@pytest.fixture
def cluster(s3_env, s3_bucket: str, tmp_path: Path) -> Iterator[Cluster]:
    """Three replicas (same secret, bucket and public URL = nginx's; each its own cache dir) behind nginx."""
    storage = f"s3://{s3_bucket}/nbpack"
    secret = secrets.token_urlsafe(32)
    replicas = [ServiceProcess({}, tmp_path / f"replica-{i}.log", workers=1, threads=8) for i in range(3)]
    lb = Nginx([f"127.0.0.1:{r.port}" for r in replicas], tmp_path / "nginx")
    for i, replica in enumerate(replicas):
        replica.env = service_env(
            storage, KEY, secret_key=secret, public_url=lb.url, cache_dir=str(tmp_path / f"cache-{i}")
        )
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:  # each waits for its own /healthz
            list(pool.map(ServiceProcess.start, replicas))
        lb.start()
        yield Cluster(replicas, lb, storage, s3_env.endpoint)
    finally:
        lb.stop()
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(lambda r: r.stop(), replicas))


def _catalog(path: Path) -> None:
    """A big catalog with awkward values: int64 ids above 2^53, NaN beside null, tz-aware times, unicode commas."""
    import random

    rng = random.Random(13)
    flux = [rng.random() for _ in range(ROWS)]
    flux[1], flux[2] = float("nan"), None
    table = pa.table(
        {
            "id": pa.array([2**60 + i for i in range(ROWS)], pa.int64()),
            "flux": pa.array(flux, pa.float64()),
            "err": pa.array([rng.random() for _ in range(ROWS)], pa.float64()),
            "seen": pa.array([1_700_000_000_000_000 + i for i in range(ROWS)], pa.timestamp("us", tz="UTC")),
            "name": pa.array([f"Ωmega, star {i % 97}" for i in range(ROWS)]),
        }
    )
    pq.write_table(table, path, compression="none")


def _create(cluster: Cluster, tmp_path: Path) -> dict:
    cat = tmp_path / "big.parquet"
    _catalog(cat)
    return Client(cluster.lb.url, KEY).create(
        {"title": "Scale-out", "catalogs": [{"name": "big", "part": "c"}]}, {"c": cat}
    )


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _clone(url: str, dest: Path, attempts: int = 1) -> tuple[str, int]:
    """``git clone --depth 1`` as nbgitpuller does, retried from scratch up to ``attempts`` times: (HEAD, tries)."""
    last = ""
    for attempt in range(1, attempts + 1):
        shutil.rmtree(dest, ignore_errors=True)
        proc = subprocess.run(
            ["git", "clone", "--quiet", "--depth", "1", url, str(dest)],
            env=GIT_ENV,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode == 0:
            head = subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=dest, env=GIT_ENV, capture_output=True, text=True, check=True
            ).stdout.strip()
            return head, attempt
        last = proc.stderr
        time.sleep(0.5)
    raise AssertionError(f"git clone failed {attempts} times: {last}")


def _runtime(script: str, *args: str, extra: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        env={**os.environ, **CLIENT_ENV, **(extra or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _thin_tree(clone: Path, folder: Path, files: str) -> Path:
    """The clone as a thin tree holds it: the big catalog left out, ``nbpack.remote.json`` naming where it is.

    (A git tree built by a service that leaves big catalogs out already is one; then it is copied as it is.)
    """
    shutil.copytree(clone, folder, ignore=shutil.ignore_patterns(".git"))
    if not (folder / "nbpack.remote.json").exists():
        (folder / "catalogs" / "big.parquet").unlink()
        (folder / "nbpack.remote.json").write_text(json.dumps({"files": files, "lazy": ["catalogs/big.parquet"]}))
    assert not (folder / "catalogs" / "big.parquet").exists()
    return folder


def _make_returns(clone: Path, folders: list[Path]) -> list[Path]:
    """Copies of the cloned bundle folder, in each of which the runtime writes a return zip of its own."""
    for folder in folders:
        shutil.copytree(clone, folder, ignore=shutil.ignore_patterns(".git"))
    out = _runtime(MAKE_RETURNS, *map(str, folders))
    return [Path(line.split("PATH ", 1)[1].strip()) for line in out.splitlines() if line.startswith("PATH ")]


def _upload(folder: Path, path: Path) -> dict:
    """The runtime's own ``upload()`` (its retries included), in a child process as in a kernel."""
    out = _runtime(UPLOAD_SCRIPT, str(folder), str(path))
    return json.loads(out.split("ANSWER ", 1)[1])


def _rid(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("nbpack-return.json"))["id"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _git_token(git_url: str) -> str:
    return git_url.split("/git/", 1)[1].split("/", 1)[0]


def test_one_journey_hops_between_replicas(cluster: Cluster, tmp_path: Path) -> None:
    created = _create(cluster, tmp_path)
    hid, links = created["id"], created["links"]
    seen_by_test: list[str] = []

    status, headers, body = _get(links["landing"])
    assert status == 200 and b"Scale-out" in body
    seen_by_test.append(headers[UPSTREAM_HEADER])
    with zipfile.ZipFile(pull(links["landing"], tmp_path / "bundle.zip")) as zf:  # the download button
        catalog = zf.read("catalogs/big.parquet")
    assert len(catalog) > 4 << 20  # above the default lazy threshold: a thin clone leaves it out

    clone = tmp_path / "clone"
    head, _ = _clone(links["git"], clone)
    assert json.loads((clone / "nbpack.json").read_text())["returns"]["endpoint"].startswith(cluster.lb.url + "/")

    # A ranged read of the big catalog: its Parquet footer, then one slice of the middle.
    files = public_url(cluster.lb.url, "files", hid, _git_token(links["git"]), path="catalogs/big.parquet")
    status, headers, tail = _get(files, {"Range": "bytes=-8"})
    assert status == 206 and tail == catalog[-8:] and tail.endswith(b"PAR1"), (status, tail)
    assert headers["Content-Range"] == f"bytes {len(catalog) - 8}-{len(catalog) - 1}/{len(catalog)}"
    seen_by_test.append(headers[UPSTREAM_HEADER])
    mid = len(catalog) // 2
    status, headers, piece = _get(files, {"Range": f"bytes={mid}-{mid + 65535}"})
    assert status == 206 and piece == catalog[mid : mid + 65536]
    seen_by_test.append(headers[UPSTREAM_HEADER])
    # The runtime's own lazy reader, as a notebook in the thin tree runs it: 2 of 5 columns, by verified blocks.
    (tmp_path / "whole.parquet").write_bytes(catalog)
    thin = _thin_tree(clone, tmp_path / "thin", public_url(cluster.lb.url, "files", hid, _git_token(links["git"])))
    out = _runtime(LAZY_READ, str(thin), str(tmp_path / "whole.parquet"), extra={"NBPACK_CACHE": str(tmp_path / "rt")})
    assert f"EQUAL True {ROWS}" in out, out

    [zip_path] = _make_returns(clone, [tmp_path / "run"])
    answer = _upload(tmp_path / "run", zip_path)
    assert answer["id"] == _rid(zip_path)
    assert [r["id"] for r in Client(cluster.lb.url, KEY).returns(hid)] == [answer["id"]]

    # Every request of the journey answered without an error, and more than one replica served it.
    rows = [r for r in cluster.lb.access_log() if hid in r[1]]
    assert rows and all(int(r[2]) < 400 for r in rows), rows
    assert len([r for r in rows if r[1].startswith("/files/")]) > 2  # the runtime's reads came through nginx too
    served = {r[3] for r in rows}
    replicas = {cluster.upstream(r) for r in cluster.replicas}
    assert served <= replicas and len(served) > 1, served
    assert set(seen_by_test) <= replicas
    # The clone's two requests (refs, pack) may land on two replicas: each built the same commit from storage.
    assert len(head) == 40

    # A DELETE through one replica revokes at once on all: no replica may answer from what it cached.
    Client(cluster.lb.url, KEY).delete(hid)
    refs = links["git"] + "/info/refs?service=git-upload-pack"
    for replica in cluster.replicas:
        for url in (links["landing"], refs, files):
            status, _, _ = _get(replica.url + url[len(cluster.lb.url) :])
            assert status in (403, 404), (replica.url, url, status)


def _building(cache: Path) -> bool:
    """A git repository is half-built in this cache: its temp repo or temp zip exists."""
    git = cache / "git"
    return git.is_dir() and any(".tmp-" in p.name or p.suffix == ".zip" for p in git.iterdir())


def test_replica_killed_mid_run_nothing_lost_or_duplicated(cluster: Cluster, tmp_path: Path) -> None:
    created = _create(cluster, tmp_path)
    hid, links = created["id"], created["links"]
    first, victim = cluster.replicas[0], cluster.replicas[1]
    # References straight from a replica that stays up, so the victim meets this handle cold during the run.
    reference = pull(first.url + links["landing"][len(cluster.lb.url) :], tmp_path / "reference.zip").read_bytes()
    head, _ = _clone(first.url + links["git"][len(cluster.lb.url) :], tmp_path / "clone")
    zips = _make_returns(tmp_path / "clone", [tmp_path / f"run-{seed}" for seed in range(4)])
    with zipfile.ZipFile(io.BytesIO(reference)) as zf:
        (tmp_path / "whole.parquet").write_bytes(zf.read("catalogs/big.parquet"))
    thin = _thin_tree(
        tmp_path / "clone", tmp_path / "thin", public_url(cluster.lb.url, "files", hid, _git_token(links["git"]))
    )
    expected = {_rid(z) for z in zips}
    assert len(expected) == 4

    victim_cache = Path(victim.env["NBPACK_CACHE_DIR"])
    before_run = len(cluster.lb.access_log())
    results: dict[str, object] = {}
    attempts: dict[str, int] = {}

    def clone(i: int) -> None:
        results[f"clone-{i}"], attempts[f"clone-{i}"] = _clone(links["git"], tmp_path / f"c-{i}", attempts=4)

    def download(i: int) -> None:
        results[f"download-{i}"] = _sha(pull(links["landing"], tmp_path / f"d-{i}.zip").read_bytes())

    def upload(i: int, again: bool = False) -> None:
        results[f"upload-{i}{'-again' if again else ''}"] = _upload(tmp_path / f"run-{i}", zips[i])["id"]

    def lazy_read(i: int) -> None:
        cache = {"NBPACK_CACHE": str(tmp_path / f"rt-{i}")}
        results[f"lazy-{i}"] = _runtime(LAZY_READ, str(thin), str(tmp_path / "whole.parquet"), extra=cache)

    jobs = [
        *[(clone, (i,)) for i in range(4)],
        *[(download, (i,)) for i in range(4)],
        *[(upload, (i,)) for i in range(4)],
        *[(upload, (i, True)) for i in range(2)],  # the same return sent twice, concurrently
        *[(lazy_read, (i,)) for i in range(2)],
    ]
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(fn, *args) for fn, args in jobs]
        # SIGKILL while the victim is building this handle's git repository from storage (bounded wait).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _building(victim_cache):
            time.sleep(0.01)
        mid_build = _building(victim_cache)
        victim.kill()
        for future in futures:
            future.result(timeout=600)
    assert mid_build, "the run never made the victim build the repository"
    assert _building(victim_cache)  # what the dead replica left half-built

    run = cluster.lb.access_log()[before_run:]
    gone = cluster.upstream(victim)
    # nginx met the dead replica: a request in flight failed (502) or a new one was refused and moved on.
    assert any(gone in r[3] and ("," in r[3] or r[2] == "502") for r in run), run
    survivors = {cluster.upstream(r) for r in cluster.replicas if r is not victim}
    assert {r[3].split(", ")[-1] for r in run if int(r[2]) < 400} <= survivors | {gone}

    assert all(results[f"clone-{i}"] == head for i in range(4)), results
    assert all(results[f"download-{i}"] == _sha(reference) for i in range(4)), results
    assert all(f"EQUAL True {ROWS}" in str(results[f"lazy-{i}"]) for i in range(2)), results
    assert {results[f"upload-{i}"] for i in range(4)} == expected
    assert results["upload-0-again"] == _rid(zips[0]) and results["upload-1-again"] == _rid(zips[1])

    # Every upload listed exactly once, its stored bytes the ones sent.
    client = Client(cluster.lb.url, KEY)
    listed = [r["id"] for r in client.returns(hid)]
    assert sorted(listed) == sorted(expected), listed
    for path in zips:
        got = client.download_return(hid, _rid(path), tmp_path / f"back-{_rid(path)}.zip")
        assert _sha(got.read_bytes()) == _sha(path.read_bytes())
    # Nothing half-written left in the bucket: each return folder holds its zip and its manifest, no more.
    store = open_storage(cluster.storage, endpoint_url=cluster.endpoint)
    keys = sorted(i.key for i in store.list(f"returns/{hid}/"))
    assert keys == sorted(f"returns/{hid}/{rid}/{n}" for rid in expected for n in ("manifest.json", "return.zip"))

    # The killed replica comes back on its own cache dir: the half-built repository is replaced, the clone the same.
    victim.start()
    assert not _building(victim_cache)  # swept at start, not only when this handle is asked for again
    assert _clone(victim.url + links["git"][len(cluster.lb.url) :], tmp_path / "after")[0] == head
    assert not _building(victim_cache)
    resumed = sum(r[1].endswith("/download") and r[5] not in ("", "-") for r in run)
    failover = sum("," in r[3] for r in run)
    print(f"clone tries {attempts}; of {len(run)} requests: {sum(r[2] == '502' for r in run)} answered 502,")
    print(f"{failover} moved on to another replica by nginx, {resumed} downloads resumed with Range")


def test_a_dead_builders_leftovers_are_swept_a_live_build_is_not(tmp_path: Path) -> None:
    import fcntl

    from nbpack.hub.git import sweep_leftovers

    git = tmp_path / "git"
    git.mkdir()
    dead, live = "h-" + "a" * 24, "h-" + "b" * 24
    for hid in (dead, live):
        (git / f".{hid}.git.tmp-0f").mkdir()
        (git / f".{hid}-x1.zip").write_bytes(b"half a bundle")
    (git / f"{dead}.git").mkdir()  # a finished repository stays
    with open(git / f"{live}.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a builder at work holds its lock
        assert sweep_leftovers(tmp_path) == [dead]
    assert sorted(p.name for p in git.iterdir()) == sorted(
        [f"{dead}.git", f"{dead}.lock", f"{live}.lock", f".{live}.git.tmp-0f", f".{live}-x1.zip"]
    )


class _CuttingHandler(BaseHTTPRequestHandler):
    """Serves BODY at any path; the first ``cuts`` answers stop halfway (the replica died), later ones honour Range."""

    body = b""
    cuts = 0
    ranges: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        cls = type(self)
        cls.ranges.append(self.headers.get("Range"))
        start = int(self.headers["Range"][6:-1]) if self.headers.get("Range") else 0
        data = cls.body[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data)))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(cls.body) - 1}/{len(cls.body)}")
        self.end_headers()
        if cls.cuts > 0:
            cls.cuts -= 1
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("cuts", [2, 9])
def test_a_download_cut_short_is_resumed_never_kept(tmp_path: Path, cuts: int) -> None:
    handler = type("H", (_CuttingHandler,), {"body": os.urandom(300_000), "cuts": cuts, "ranges": []})
    with serving(handler) as base:
        url = f"{base}/b/h-{'0' * 24}/download?t=x"
        if cuts < DOWNLOAD_ATTEMPTS:
            got = pull(url, tmp_path / "b.zip")
            assert got.read_bytes() == handler.body
            # each retry asked for the rest only, from where the file stopped
            assert handler.ranges == [None, "bytes=150000-", "bytes=225000-"]
        else:
            with pytest.raises(UpstreamError, match=f"after {DOWNLOAD_ATTEMPTS} attempts"):
                pull(url, tmp_path / "b.zip")
            assert list(tmp_path.iterdir()) == []  # no truncated zip left where a whole one is expected
