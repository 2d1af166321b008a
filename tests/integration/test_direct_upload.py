"""Large returned outputs straight to the object store: presigned PUT, slim return zip, verified ingest.

Real gunicorn services on real SeaweedFS (and a local folder); the returns are written and sent by the runtime's own
``finish()``/``upload()`` in a child process (no kernel), as the results cell would.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from nbpack.bundle.returns import check_return, open_return
from nbpack.store.backends import open_storage
from tests.fixtures.service import service_env
from tests.helpers import RUNTIME_PREAMBLE, UPLOAD_SCRIPT, template_notebook
from tests.openapi_check import check

KEY = secrets.token_urlsafe(16)
MIB = 1 << 20
BIG = 5 * MIB

RUN = (
    RUNTIME_PREAMBLE
    + """\
folder, seed, upload = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
shutil.rmtree(folder + "/outputs", ignore_errors=True)
rt = load_runtime(folder)
rt.start(folder)
rt.save_output(random.Random(seed).randbytes(BIG), "big.bin")
rt.save_output(b"small output\\n", "small.txt")
rt.save_value("seed", seed)
print("PATH " + str(rt.finish(upload=upload)), flush=True)
""".replace("BIG", str(BIG))
)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _big_bytes(seed: int) -> bytes:
    return random.Random(seed).randbytes(BIG)


def _call(
    url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None, method: str | None = None
) -> tuple[int, bytes]:
    """One HTTP request: (status, body), 4xx/5xx included."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class Setup:
    """A stored bundle unpacked as a hub would hold it, with the service that stored it."""

    def __init__(self, svc, folder: Path, manifest: dict, storage: str, endpoint: str | None) -> None:  # noqa: ANN001
        self.svc, self.folder, self.manifest = svc, folder, manifest
        self.bid = manifest["returns"]["endpoint"].rstrip("/").split("/")[-2]  # the handle, not the content id
        self.storage = open_storage(storage, endpoint_url=endpoint)

    def run(self, seed: int, out: Path, *, upload: bool) -> tuple[Path, str]:
        """The runtime's finish() in a child process; (return zip, its stdout)."""
        env = {
            **os.environ,
            "NBPACK_NOTEBOOK": str(self.folder / self.manifest["payload"]["notebook"]),
            "NBPACK_RETURN_PATH": str(out),
            "NBPACK_RETRY_DELAY": "0.05",
            "NBPACK_UPLOAD_ATTEMPTS": "2",
        }
        env.pop("NBPACK_NO_UPLOAD", None)
        res = subprocess.run(
            [sys.executable, "-c", RUN, str(self.folder), str(seed), "1" if upload else "0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        return out, res.stdout

    def upload(self, path: Path) -> tuple[dict, str]:
        """The runtime's upload() of a kept return zip; (answer, stdout)."""
        env = {**os.environ, "NBPACK_RETRY_DELAY": "0.05", "NBPACK_UPLOAD_ATTEMPTS": "2"}
        res = subprocess.run(
            [sys.executable, "-c", UPLOAD_SCRIPT, str(self.folder), str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        line = next(x for x in res.stdout.splitlines() if x.startswith("ANSWER "))
        return json.loads(line[7:]), res.stdout

    def returns(self) -> list[str]:
        status, body = _call(f"{self.svc.url}/api/v1/bundles/{self.bid}/returns", headers={"X-API-Key": KEY})
        assert status == 200, body
        return [r["id"] for r in json.loads(body)["returns"]]

    def file(self, rid: str, name: str) -> tuple[int, bytes]:
        return _call(f"{self.svc.url}/api/v1/bundles/{self.bid}/returns/{rid}/files/{name}", headers={"X-API-Key": KEY})

    def ask_blob(self, sha256: str, size: int) -> tuple[int, dict]:
        """POST /returns/blobs with the return token; the answer, checked against openapi.yaml."""
        returns = self.manifest["returns"]
        url = f"{returns['endpoint']}/blobs"
        status, body = _call(
            url,
            method="POST",
            data=json.dumps({"sha256": sha256, "bytes": size}).encode(),
            headers={"Authorization": f"Bearer {returns['token']}", "Content-Type": "application/json"},
        )
        return status, check("POST", urlsplit(url).path, status, "application/json", body)

    def post(self, data: bytes) -> tuple[int, dict]:
        """POST a return zip with the return token; the answer, checked against openapi.yaml."""
        returns = self.manifest["returns"]
        status, body = _call(
            returns["endpoint"],
            data=data,
            method="POST",
            headers={"Authorization": f"Bearer {returns['token']}", "Content-Type": "application/zip"},
        )
        return status, check("POST", urlsplit(returns["endpoint"]).path, status, "application/json", body)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("direct")
    csv = work / "sources.csv"
    csv.write_text("id,flux\n1,1.5\n")
    path = work / "bundle.zip"
    build_bundle(
        BuildSpec(title="Direct upload", catalogs=[CatalogInput("sources", csv)], notebook=template_notebook("x = 1")),
        path,
    )
    return path


def _setup(start_service, built: Path, tmp_path: Path, storage: str, endpoint: str | None, **extra: str) -> Setup:
    svc = start_service(service_env(storage, KEY, cache_dir=str(tmp_path / "cache"), **extra))
    status, body = _call(
        f"{svc.url}/api/v1/bundles",
        data=built.read_bytes(),
        method="POST",
        headers={"X-API-Key": KEY, "Content-Type": "application/zip"},
    )
    assert status == 201, body
    created = json.loads(body)
    status, data = _call(created["links"]["download"])
    assert status == 200
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(folder)
    manifest = json.loads((folder / "nbpack.json").read_text())
    return Setup(svc, folder, manifest, storage, endpoint)


@pytest.fixture
def direct(s3_env, s3_bucket: str, start_service, built: Path, tmp_path: Path) -> Setup:  # noqa: ANN001
    """A service on SeaweedFS that sends outputs of 1 MiB or more through presigned URLs, with a handle there."""
    storage = f"s3://{s3_bucket}/nbpack"
    return _setup(start_service, built, tmp_path, storage, s3_env.endpoint, direct_upload_threshold=str(MIB))


def _slim(full: Path, member: str) -> bytes:
    """The zip the runtime sends: same manifest with ``member`` marked external, the member left out."""
    out = io.BytesIO()
    with zipfile.ZipFile(full) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        manifest = json.loads(src.read("nbpack-return.json"))
        for o in manifest["outputs"]:
            if o["path"] == member:
                o["external"] = "blob"
        for name in src.namelist():
            if name == "nbpack-return.json":
                dst.writestr(name, json.dumps(manifest, indent=2))
            elif name != member:
                dst.writestr(name, src.read(name))
    return out.getvalue()


def _rid(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("nbpack-return.json"))["id"]


def test_large_output_goes_through_a_presigned_url(direct: Setup, tmp_path: Path) -> None:
    st = direct
    assert st.manifest["returns"]["direct_threshold"] == MIB
    # The public manifest shows the threshold, never the token.
    status, body = _call(f"{st.svc.url}/api/v1/bundles/{st.bid}", headers={"X-API-Key": KEY})
    assert json.loads(body)["returns"]["direct_threshold"] == MIB and "token" not in json.loads(body)["returns"]

    full, out = st.run(1, tmp_path / "r1.zip", upload=True)
    assert "uploaded straight to the object store" in out and "uploaded as" in out, out
    rid, big_sha = _rid(full), _sha(_big_bytes(1))
    assert st.returns() == [rid]

    # The service received the slim zip only; the output sits in its blob, whole.
    stored = st.storage.stat(f"returns/{st.bid}/{rid}/return.zip").size
    assert stored < BIG < full.stat().st_size
    blobs = [i for i in st.storage.list(f"blobs/{st.bid}/")]
    assert [(b.key, b.size) for b in blobs] == [(f"blobs/{st.bid}/{big_sha}", BIG)]

    status, data = st.file(rid, "outputs/big.bin")
    assert status == 200 and _sha(data) == big_sha
    status, data = st.file(rid, "outputs/small.txt")
    assert status == 200 and data == b"small output\n"
    status, body = _call(f"{st.svc.url}/api/v1/bundles/{st.bid}/returns/{rid}", headers={"X-API-Key": KEY})
    outputs = {o["path"]: o for o in json.loads(body)["outputs"]}
    assert outputs["outputs/big.bin"]["external"] == "blob" and "external" not in outputs["outputs/small.txt"]

    # The stored (slim) zip: `nbpack validate` names the member kept outside instead of failing obscurely.
    slim = tmp_path / "slim.zip"
    st.storage.download_to(f"returns/{st.bid}/{rid}/return.zip", slim)
    with open_return(slim) as rf:
        problems = check_return(rf)
        assert len(problems) == 1 and "outputs/big.bin: stored externally" in problems[0], problems
        assert check_return(rf, external_ok=True) == []
    with open_return(full) as rf:
        assert check_return(rf) == []

    # Again: the blob request says it exists, the return is stored once, no second blob.
    status, answer = st.ask_blob(big_sha, BIG)
    assert status == 200 and answer["exists"] is True
    answer, out = st.upload(full)
    assert answer["id"] == rid and "uploaded straight" in out, out
    assert st.returns() == [rid]
    assert len(list(st.storage.list(f"blobs/{st.bid}/"))) == 1

    # A bad request and a foreign token are refused.
    status, answer = st.ask_blob("XYZ", 10)
    assert status == 400 and answer["error"] == "invalid_input"
    status, body = _call(
        f"{st.manifest['returns']['endpoint']}/blobs",
        method="POST",
        data=json.dumps({"sha256": big_sha, "bytes": BIG}).encode(),
        headers={"Authorization": "Bearer nope"},
    )
    assert status == 403


def test_tampered_or_missing_blob_is_refused(direct: Setup, tmp_path: Path) -> None:
    st = direct
    full, _ = st.run(2, tmp_path / "r2.zip", upload=False)
    big_sha, key = _sha(_big_bytes(2)), f"blobs/{st.bid}/{_sha(_big_bytes(2))}"
    slim = _slim(full, "outputs/big.bin")

    # No blob at all: refused, naming it.
    status, answer = st.post(slim)
    assert status == 400 and answer["error"] == "blob_missing" and key in answer["message"], answer
    assert st.returns() == []

    # A blob of the right size but other bytes (overwritten in S3 before the POST): refused and removed.
    status, answer = st.ask_blob(big_sha, BIG)
    # A create-once URL for the blob's own key (SeaweedFS enforces If-None-Match and the checksum).
    assert status == 200 and answer["method"] == "PUT" and answer["key"] == key, answer
    assert answer["headers"]["If-None-Match"] == "*"
    st.storage.put_bytes(key, _big_bytes(3))
    status, answer = st.ask_blob(big_sha, BIG)
    assert status == 200 and answer["exists"] is True  # size alone matches: only ingest reads the bytes
    status, answer = st.post(slim)
    assert status == 400 and answer["error"] == "blob_mismatch" and "outputs/big.bin" in answer["message"], answer
    assert st.returns() == []
    assert not st.storage.exists(key)
    assert list(st.storage.list(f"returns/{st.bid}/")) == []

    # The runtime's upload() of the kept zip then puts the right bytes and the return arrives.
    answer, out = st.upload(full)
    assert answer["id"] == _rid(full) and "uploaded straight" in out, out
    assert st.returns() == [_rid(full)]
    status, data = st.file(_rid(full), "outputs/big.bin")
    assert status == 200 and _sha(data) == big_sha


def test_local_folder_falls_back_to_the_whole_zip(start_service, built: Path, tmp_path: Path) -> None:
    storage = str(tmp_path / "store")
    st = _setup(start_service, built, tmp_path, storage, None, direct_upload_threshold=str(MIB))
    assert "direct_threshold" not in st.manifest["returns"]
    status, answer = st.ask_blob("0" * 64, BIG)
    assert status == 409 and answer["error"] == "direct_upload_unavailable", answer

    # Even told to try (a bundle stored while the service used S3), the runtime sends the whole zip.
    st.manifest["returns"]["direct_threshold"] = MIB
    (st.folder / "nbpack.json").write_text(json.dumps(st.manifest))
    full, out = st.run(4, tmp_path / "r4.zip", upload=True)
    assert "large outputs not sent directly" in out and "uploaded as" in out, out
    rid = _rid(full)
    assert st.returns() == [rid]
    stored = Path(storage) / "returns" / st.bid / rid / "return.zip"
    assert stored.stat().st_size == full.stat().st_size
    status, data = st.file(rid, "outputs/big.bin")
    assert status == 200 and _sha(data) == _sha(_big_bytes(4))
    # A slim zip of a new return is refused here: there is no blob store to find the output in.
    other, _ = st.run(5, tmp_path / "r5.zip", upload=False)
    status, answer = st.post(_slim(other, "outputs/big.bin"))
    assert status == 400 and answer["error"] == "blob_missing", answer
    assert st.returns() == [rid]
