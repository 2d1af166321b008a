"""The bundle runtime, run the way hubs run it: copied into a bundle folder, imported in a subprocess or kernel."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import zipfile
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import nbformat
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nbclient import NotebookClient

from tests.blob_server import BlobServer
from tests.helpers import RUNTIME_DIR

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"


def _schema(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text())


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sums(data: bytes) -> dict[str, str]:
    return {
        "sha256": _sha(data),
        "md5": hashlib.md5(data).hexdigest(),
        "adler32": f"{zlib.adler32(data, 1) & 0xFFFFFFFF:08x}",
    }


def make_bundle(
    root: Path,
    *,
    files: list[dict] | None = None,
    options: dict | None = None,
    returns: dict | None = None,
    requirements: list[str] | None = None,
) -> Path:
    """A bundle folder made by hand: manifest valid against the bundle schema, one catalog, runtime, notebook."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "catalogs").mkdir()
    schema = pa.schema(
        [
            pa.field(
                "ra",
                pa.float64(),
                metadata={"unit": "deg", "ucd": "pos.eq.ra;meta.main", "description": "Right ascension"},
            ),
            pa.field("mag", pa.float32(), metadata={"unit": "mag", "description": "G magnitude"}),
            pa.field("name", pa.string()),
        ]
    )
    table = pa.table({"ra": [10.5, 20.25, 30.0], "mag": [12.0, 13.5, None], "name": ["a", "b", "c"]}, schema=schema)
    pq.write_table(table, root / "catalogs" / "stars.parquet")
    shutil.copytree(RUNTIME_DIR, root / "nbpack_runtime", ignore=shutil.ignore_patterns("__pycache__"))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("import nbpack_runtime\nbundle = nbpack_runtime.start()")]
    nbformat.write(nb, root / "analysis.ipynb")
    cat_bytes = (root / "catalogs" / "stars.parquet").read_bytes()
    contents = sorted(
        (
            {"path": p.relative_to(root).as_posix(), "bytes": p.stat().st_size, "sha256": _sha(p.read_bytes())}
            for p in root.rglob("*")
            if p.is_file()
        ),
        key=lambda e: e["path"],
    )
    manifest = {
        "format": "nbpack-bundle",
        "format_version": "1.0",
        "id": "b-" + "a1" * 12,
        "title": "Test stars",
        "created": "2024-01-01T00:00:00Z",
        "catalogs": [
            {
                "name": "stars",
                "path": "catalogs/stars.parquet",
                "rows": 3,
                "sha256": _sha(cat_bytes),
                "bytes": len(cat_bytes),
                "columns": [
                    {"name": "ra", "type": "double", "unit": "deg"},
                    {"name": "mag", "type": "float", "unit": "mag"},
                    {"name": "name", "type": "string"},
                ],
            }
        ],
        "files": files or [],
        "payload": {"notebook": "analysis.ipynb", "requirements": requirements or []},
        "cells": {"bootstrap": "nbpack-bootstrap", "results": "nbpack-results"},
        "runtime": {"module": "nbpack_runtime", "version": "1.0.0"},
        "contents": contents,
    }
    if options:
        manifest["options"] = options
    if returns:
        manifest["returns"] = returns
    jsonschema.Draft202012Validator(_schema("bundle-1.0.schema.json")).validate(manifest)
    (root / "nbpack.json").write_text(json.dumps(manifest, indent=2))
    return root


def run_in_bundle(bundle: Path, code: str, env: dict[str, str] | None = None, timeout: float = 60) -> dict:
    """Run ``code`` with the bundle's own runtime in a fresh interpreter; the code prints one JSON line last."""
    script = bundle / "_driver.py"
    script.write_text(
        "import json, sys\nimport nbpack_runtime as rt\n"
        + code
        + "\nassert 'nbpack' not in sys.modules, 'runtime imported nbpack'\n"
    )
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("RUCIO_", "NBPACK_", "BEARER_"))}
    full_env["NBPACK_CACHE"] = str(bundle.parent / "cache")
    full_env["NBPACK_RETRY_DELAY"] = "0.05"
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=bundle, env=full_env, capture_output=True, text=True, timeout=timeout
    )
    script.unlink()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = [line for line in proc.stdout.splitlines() if line.startswith("{")][-1]
    return {"out": proc.stdout, "err": proc.stderr, **json.loads(last)}


@pytest.fixture
def server():
    with BlobServer() as srv:
        yield srv


def test_start_catalogs_and_requirements(tmp_path):
    bundle = make_bundle(tmp_path / "b", requirements=["pyarrow>=1", "nbpack-no-such-package>=2"])
    res = run_in_bundle(
        bundle,
        """
b = rt.start()
b2 = rt.start()
t = b.catalog("stars")
df = b.catalog("stars", as_="pandas")
at = b.catalog("stars", as_="astropy")
print(json.dumps({"same": b is b2, "rows": t.num_rows, "shape": list(df.shape), "unit": str(at["ra"].unit),
                  "mag_unit": str(at["mag"].unit), "ucd": at["ra"].meta.get("ucd"),
                  "desc": at["ra"].description, "missing": rt.check_requirements(), "catalogs": b.catalogs}))
""",
    )
    assert res["same"] is True
    assert res["rows"] == 3 and res["shape"] == [3, 3]
    assert (res["unit"], res["mag_unit"], res["ucd"]) == ("deg", "mag", "pos.eq.ra;meta.main")
    assert res["desc"] == "Right ascension"
    assert res["missing"] == ["nbpack-no-such-package>=2"]
    assert "pip install 'nbpack-no-such-package>=2'" in res["out"]
    assert "Test stars" in res["out"] and "stars: 3 rows" in res["out"]


def test_catalog_tampered_is_refused(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    pq.write_table(pa.table({"ra": [1.0]}), bundle / "catalogs" / "stars.parquet")
    res = run_in_bundle(
        bundle,
        """
try:
    rt.start().catalog("stars")
    print(json.dumps({"error": None}))
except rt.ChecksumMismatch as err:
    print(json.dumps({"error": str(err)}))
""",
    )
    assert res["error"].startswith("catalog 'stars': sha256 expected")


def test_fetch_cache_and_checksum_refusal(tmp_path, server):
    good = os.urandom(50_000)
    url = server.serve("/data/good.fits", good)
    wrong = dict(_sums(good), sha256="0" * 64)
    bundle = make_bundle(
        tmp_path / "b",
        options={"allow_http": True},
        files=[
            {"name": "good", "uri": url, "size": len(good), "checksums": _sums(good), "site": "TEST"},
            {"name": "bad", "uri": url, "checksums": wrong},
        ],
    )
    res = run_in_bundle(
        bundle,
        """
b = rt.start()
p1 = b.file("good")
p2 = b.file("good")
try:
    b.file("bad")
    err = None
except rt.ChecksumMismatch as e:
    err = str(e)
print(json.dumps({"p1": str(p1), "p2": str(p2), "err": err}))
""",
    )
    cache = tmp_path / "cache"
    assert res["p1"] == res["p2"] and Path(res["p1"]).read_bytes() == good
    assert Path(res["p1"]).is_relative_to(cache / "sha256" / _sha(good))
    assert server.log.requests.count("/data/good.fits") == 2  # one for good (then cached), one for bad
    assert res["err"] == f"bad: sha256 expected {'0' * 64}, got {_sha(good)}"
    assert not (cache / "sha256" / ("0" * 64)).exists() or not any((cache / "sha256" / ("0" * 64)).iterdir())
    # The good copy is untouched by the failed download of the same URL.
    assert Path(res["p1"]).read_bytes() == good
    # A second bundle with the same file reuses the cache: no new request.
    other = make_bundle(
        tmp_path / "b2",
        options={"allow_http": True},
        files=[{"name": "again", "uri": url, "checksums": {"sha256": _sha(good)}}],
    )
    res2 = run_in_bundle(other, 'print(json.dumps({"p": str(rt.start().file("again"))}))')
    assert res2["p"] == res["p1"] and server.log.requests.count("/data/good.fits") == 2


def test_bad_download_never_replaces_good_cached_copy(tmp_path, server):
    good = b"good data " * 1000
    url = server.serve("/data/x.bin", good)
    sums = {"sha256": _sha(good)}
    bundle = make_bundle(
        tmp_path / "b", options={"allow_http": True}, files=[{"name": "x", "uri": url, "checksums": sums}]
    )
    first = run_in_bundle(bundle, 'print(json.dumps({"p": str(rt.start().file("x"))}))')
    server.serve("/data/x.bin", b"corrupted " * 1000)  # the server now serves bad bytes
    Path(first["p"]).unlink()  # force a new download, but keep a good copy aside to compare
    second = run_in_bundle(
        bundle,
        """
try:
    rt.start().file("x"); print(json.dumps({"err": None}))
except rt.ChecksumMismatch as e:
    print(json.dumps({"err": str(e)}))
""",
    )
    assert second["err"].startswith("x: sha256 expected " + _sha(good))
    cached_dir = Path(first["p"]).parent
    assert list(cached_dir.iterdir()) == []  # neither the bad file nor a .part is visible
    server.serve("/data/x.bin", good)
    third = run_in_bundle(bundle, 'print(json.dumps({"p": str(rt.start().file("x"))}))')
    assert Path(third["p"]).read_bytes() == good


def test_partial_download_resumes_with_range(tmp_path, server):
    blob = os.urandom(300_000)
    url = server.serve("/data/big.bin", blob)
    bundle = make_bundle(
        tmp_path / "b",
        options={"allow_http": True},
        files=[{"name": "big", "uri": url, "size": len(blob), "checksums": _sums(blob)}],
    )
    part = tmp_path / "cache" / "sha256" / _sha(blob) / "big.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(blob[:100_000])
    res = run_in_bundle(bundle, 'print(json.dumps({"p": str(rt.start().file("big"))}))')
    assert Path(res["p"]).read_bytes() == blob and not part.exists()
    assert server.log.ranges == ["bytes=100000-"]
    assert server.log.bytes_served["/data/big.bin"] == 200_000
    assert "big [" in res["err"]  # the stderr progress bar


def test_plain_http_refused_without_allow_http(tmp_path, server):
    url = server.serve("/data/a.txt", b"hello")
    bundle = make_bundle(tmp_path / "b", files=[{"name": "a", "uri": url}])
    res = run_in_bundle(
        bundle,
        """
try:
    rt.start().file("a"); print(json.dumps({"err": None}))
except rt.FetchError as e:
    print(json.dumps({"err": str(e)}))
""",
    )
    assert "plain http is refused" in res["err"] and "options.allow_http" in res["err"]
    assert server.log.requests == []


def test_notebook_values_outputs_and_return_zip(tmp_path, server):
    url = server.serve("/data/f.bin", b"0123456789" * 100)
    bundle = make_bundle(
        tmp_path / "b",
        requirements=["pyarrow>=1"],
        options={"allow_http": True},
        files=[{"name": "f", "uri": url, "checksums": {"md5": hashlib.md5(b"0123456789" * 100).hexdigest()}}],
    )
    nb = nbformat.read(bundle / "analysis.ipynb", as_version=4)
    nb.cells += [
        nbformat.v4.new_code_cell(
            "n = bundle.catalog('stars').num_rows\n"
            "nbpack_runtime.save_value('n_rows', n)\n"
            "nbpack_runtime.save_value('label', 'bright stars')\n"
            "nbpack_runtime.save_value('obj', object())\n"
            "nbpack_runtime.save_output(b'x,y\\n1,2\\n', 'table.csv')\n"
            "assert bundle.file('f').stat().st_size == 1000"
        ),
        nbformat.v4.new_code_cell("path = nbpack_runtime.finish()\nprint(path)"),
    ]
    env_before = dict(os.environ)
    os.environ["NBPACK_CACHE"] = str(tmp_path / "cache")
    try:
        NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(bundle)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    # scrapbook's glue() format: application/scrapbook.scrap.<encoder>+json + metadata {"scrapbook": {...}}
    scraps = {}
    for out in nb.cells[1].outputs:
        for mime, payload in out.get("data", {}).items():
            if mime.startswith("application/scrapbook.scrap."):
                assert out["metadata"]["scrapbook"] == {"name": payload["name"], "data": True, "display": False}
                assert mime == f"application/scrapbook.scrap.{payload['encoder']}+json"
                assert payload["version"] == 1  # scrapbook 0.5 knows payload version 1 only
                scraps[payload["name"]] = (payload["encoder"], payload["data"])
    assert scraps["n_rows"] == ("json", 3)
    assert scraps["label"] == ("text", "bright stars")
    assert scraps["obj"][0] == "text" and scraps["obj"][1].startswith("<object object")
    progress = [o["data"]["text/plain"] for o in nb.cells[1].outputs if "text/plain" in o.get("data", {})]
    assert any(p.startswith("f [") for p in progress)  # the kernel progress display

    zips = list(bundle.glob("nbpack-return-r-*.zip"))
    assert len(zips) == 1
    with zipfile.ZipFile(zips[0]) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("nbpack-return.json"))
        crate = json.loads(zf.read("ro-crate-metadata.json"))
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())
        assert zf.read("outputs/table.csv") == b"x,y\n1,2\n"
    jsonschema.Draft202012Validator(_schema("return-1.0.schema.json")).validate(manifest)
    assert (
        names
        == sorted(names)
        == ["analysis.ipynb", "nbpack-return.json", "outputs/table.csv", "ro-crate-metadata.json"]
    )
    assert zips[0].name == f"nbpack-return-{manifest['id']}.zip"
    assert manifest["status"] == "completed" and manifest["bundle_id"] == "b-" + "a1" * 12
    assert manifest["outputs"] == [
        {"path": "outputs/table.csv", "bytes": 8, "sha256": _sha(b"x,y\n1,2\n"), "media_type": "text/csv"}
    ]
    assert {"name": "n_rows", "encoder": "json", "data": 3} in manifest["values"]
    assert manifest["provenance"]["kernel"] == "python3" and "pyarrow" in manifest["provenance"]["packages"]
    # design.md "Return id": files, then the canonical JSON of the run (values, status, times, ...).
    h = hashlib.sha256(manifest["bundle_id"].encode())
    for entry in sorted(manifest["contents"], key=lambda e: e["path"]):
        h.update(f"\n{entry['path']}\0{entry['sha256']}".encode())
    run = {k: manifest[k] for k in ("status", "error", "started", "ended", "notebook", "values", "provenance")}
    h.update(b"\n" + json.dumps(run, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
    assert manifest["id"] == "r-" + h.hexdigest()[:24]
    action = next(e for e in crate["@graph"] if e["@type"] == "CreateAction")
    assert action["result"] == [{"@id": "outputs/table.csv"}] and {"@id": "#catalog-stars"} in action["object"]


class _Receiver(ThreadingHTTPServer):
    """A tiny return endpoint answering the given statuses in turn (503 once, then 201 by default)."""

    daemon_threads = True

    def __init__(self, statuses: tuple[int, ...] = (503, 201)) -> None:
        self.posts: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                srv.posts.append(
                    {"auth": self.headers["Authorization"], "type": self.headers["Content-Type"], "body": body}
                )
                status = statuses[min(len(srv.posts), len(statuses)) - 1]
                answer = (
                    {"id": "r-fromserver", "links": {"self": "/returns/r-fromserver"}}
                    if status < 300
                    else {"error": "refused", "message": f"server says {status}"}
                )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        srv = self
        super().__init__(("127.0.0.1", 0), Handler)


def test_finish_uploads_with_retry(tmp_path):
    receiver = _Receiver()
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{receiver.server_address[1]}/api/v1/returns"
        bundle = make_bundle(tmp_path / "b", returns={"endpoint": endpoint, "token": "ret-tok-123"})
        res = run_in_bundle(
            bundle,
            """
rt.start(); rt.save_output(b"ok", "r.txt"); rt.record_error(ValueError("boom"))
p = rt.finish()
print(json.dumps({"p": str(p)}))
""",
        )
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert len(receiver.posts) == 2
    last = receiver.posts[-1]
    assert last["auth"] == "Bearer ret-tok-123" and last["type"] == "application/zip"
    assert last["body"] == Path(res["p"]).read_bytes()
    assert "uploaded as r-fromserver" in res["out"]
    with zipfile.ZipFile(res["p"]) as zf:
        manifest = json.loads(zf.read("nbpack-return.json"))
    assert manifest["status"] == "failed" and manifest["error"] == "ValueError: boom"


def test_finish_with_receiver_down_keeps_zip_and_explains(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bundle = make_bundle(tmp_path / "b", returns={"endpoint": f"http://127.0.0.1:{port}/r", "token": "sekret-tok"})
    res = run_in_bundle(bundle, 'print(json.dumps({"p": str(rt.finish())}))')
    assert Path(res["p"]).is_file()
    assert "upload failed" in res["out"] and "after 4 attempts" in res["out"]
    assert f"nbpack_runtime.upload('{res['p']}')" in res["out"] and "curl -X POST" in res["out"]
    assert "sekret-tok" not in res["out"] + res["err"]


def test_upload_4xx_is_final_and_shows_server_message(tmp_path):
    receiver = _Receiver(statuses=(403,))
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{receiver.server_address[1]}/r"
        bundle = make_bundle(tmp_path / "b", returns={"endpoint": endpoint, "token": "tok-403"})
        res = run_in_bundle(bundle, 'print(json.dumps({"p": str(rt.finish())}))')
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert len(receiver.posts) == 1
    assert "refused the return (HTTP 403): server says 403" in res["out"] and Path(res["p"]).is_file()


@pytest.mark.s3
def test_s3_file_and_results_to_data_lake(tmp_path, s3_env, s3_bucket):
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_env.endpoint)
    blob = b"spectrum " * 500
    s3.put_object(Bucket=s3_bucket, Key="lake/spec.dat", Body=blob)
    bundle = make_bundle(
        tmp_path / "b",
        files=[
            {
                "name": "spec",
                "uri": f"s3://{s3_bucket}/lake/spec.dat",
                "checksums": {"md5": hashlib.md5(blob).hexdigest()},
            }
        ],
    )
    manifest = json.loads((bundle / "nbpack.json").read_text())
    manifest["results"] = {
        "s3": {"bucket": s3_bucket, "prefix": "results", "endpoint": s3_env.endpoint},
        "rucio": {"scope": "user.esap", "rse": "LOCAL"},
        "outputs": ["*.csv"],
    }
    jsonschema.Draft202012Validator(_schema("bundle-1.0.schema.json")).validate(manifest)
    (bundle / "nbpack.json").write_text(json.dumps(manifest))
    res = run_in_bundle(
        bundle,
        """
b = rt.start()
p = b.file("spec")
rt.save_output(b"a,b;", "t.csv"); rt.save_output(b"notes", "n.txt")
print(json.dumps({"data": p.read_text()[:8], "zip": str(rt.finish())}))
""",
        {"AWS_ENDPOINT_URL": s3_env.endpoint},
    )
    assert res["data"] == "spectrum"
    assert "could not copy outputs/t.csv to rucio" in res["out"] and "need RUCIO_HOST" in res["out"]
    with zipfile.ZipFile(res["zip"]) as zf:
        ret = json.loads(zf.read("nbpack-return.json"))
    jsonschema.Draft202012Validator(_schema("return-1.0.schema.json")).validate(ret)
    outs = {o["path"]: o for o in ret["outputs"]}
    assert "locations" not in outs["outputs/n.txt"]
    [loc] = outs["outputs/t.csv"]["locations"]
    assert loc["uri"] == f"s3://{s3_bucket}/results/{ret['id']}/t.csv"
    assert loc["checksums"]["sha256"] == _sha(b"a,b;")
    body = s3.get_object(Bucket=s3_bucket, Key=f"results/{ret['id']}/t.csv")["Body"].read()
    assert body == b"a,b;"
