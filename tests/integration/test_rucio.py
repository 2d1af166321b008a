"""The bundle runtime against a real Rucio server (tests/fixtures/rucio.py): DIDs in, results out.

Every call goes to PyPI's ``rucio`` 41 server over TLS and every byte to its storage server; nothing here imitates
Rucio. The runtime runs the way hubs run it: copied into a bundle folder, in a fresh interpreter.
"""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path

import jsonschema
import pytest

from tests.fixtures.rucio import CONTENT, Rucio
from tests.integration.test_runtime import _schema, make_bundle, run_in_bundle

pytestmark = pytest.mark.rucio

FETCH = """
b = rt.start()
out = {}
for name in b.files:
    try:
        p = b.file(name)
        out[name] = {"path": str(p), "fetched": b.fetched.get(name)}
    except rt.RuntimeProblem as e:
        out[name] = {"error": type(e).__name__ + ": " + str(e)}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def token(rucio: Rucio) -> str:
    return rucio.token()


def _rest(rucio: Rucio, token: str, path: str) -> tuple[int, str]:
    req = urllib.request.Request(rucio.url + path, headers={"X-Rucio-Auth-Token": token})
    with urllib.request.urlopen(req, timeout=30, context=ssl.create_default_context(cafile=rucio.ca)) as resp:
        return resp.status, resp.read().decode()


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _fetch(tmp_path: Path, rucio: Rucio, token: str, files: dict[str, str], **env: str) -> dict:
    bundle = make_bundle(tmp_path / "b", files=[{"name": n, "uri": uri} for n, uri in files.items()])
    return run_in_bundle(bundle, FETCH, {**rucio.env(token), **env}, timeout=120)


def test_file_did_comes_from_the_hub_local_rse_either_way(tmp_path: Path, rucio: Rucio, token: str) -> None:
    seen = len(rucio.storage_gets())
    local = _fetch(tmp_path / "1", rucio, token, {"f": "escape:file1.txt"}, NBPACK_LOCAL_RSES="OTHER,LOCAL-DISK")
    assert Path(local["f"]["path"]).read_bytes() == CONTENT["file1.txt"], local
    assert local["f"]["fetched"]["rse"] == "LOCAL-DISK"
    far = _fetch(tmp_path / "2", rucio, token, {"f": "escape:file1.txt"}, NBPACK_LOCAL_RSES="FAR-DISK")
    assert Path(far["f"]["path"]).read_bytes() == CONTENT["file1.txt"] and far["f"]["fetched"]["rse"] == "FAR-DISK"
    # The storage served exactly one download from each RSE's own path.
    gets = rucio.storage_gets()[seen:]
    assert [g.split("/")[1] for g in gets] == ["rucio", "far"], gets
    assert all(g.endswith("/escape/4d/b5/file1.txt") for g in gets)


def test_dataset_and_container_dids_give_a_folder_of_verified_files(tmp_path: Path, rucio: Rucio, token: str) -> None:
    res = _fetch(
        tmp_path,
        rucio,
        token,
        {"ds": "escape:demo-dataset", "box": "escape:demo-container"},
        NBPACK_LOCAL_RSES="LOCAL-DISK",
    )
    for name in ("ds", "box"):
        folder = Path(res[name]["path"])
        assert folder.is_dir(), res
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == CONTENT
        files = res[name]["fetched"]["files"]
        assert {f["did"] for f in files} == {"escape:file1.txt", "escape:file2.dat"}
        assert {f["rse"] for f in files} == {"LOCAL-DISK"}
    # Each file is cached once by content, whichever collection named it.
    cache = tmp_path / "cache"
    assert sorted(p.name for p in (cache / "md5").rglob("*") if p.is_file()) == ["file1.txt", "file2.dat"]


def test_a_replica_whose_bytes_differ_from_rucios_checksums_is_refused(
    tmp_path: Path, rucio: Rucio, token: str
) -> None:
    res = _fetch(tmp_path, rucio, token, {"bad": "escape:bad.dat"})
    told = b"what Rucio was told\n" * 50
    held = b"what the disk holds\n" * 50
    want, got = (f"{zlib.adler32(x) & 0xFFFFFFFF:08x}" for x in (told, held))
    assert res["bad"]["error"] == f"ChecksumMismatch: bad: adler32 expected {want}, got {got}"
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # nothing bad became visible


def test_manifest_checksum_that_disagrees_with_rucio_is_refused_before_download(
    tmp_path: Path, rucio: Rucio, token: str
) -> None:
    bundle = make_bundle(
        tmp_path / "b", files=[{"name": "f", "uri": "escape:file2.dat", "checksums": {"adler32": "0000beef"}}]
    )
    seen = len(rucio.storage_gets())
    res = run_in_bundle(bundle, FETCH, rucio.env(token), timeout=120)
    assert res["f"]["error"] == (
        "ChecksumMismatch: f: the bundle records adler32 0000beef, Rucio records "
        f"{rucio.registered['files'][1]['adler32']}"
    )
    assert rucio.storage_gets()[seen:] == []


def test_unknown_did_and_bad_or_expired_token_are_explained(tmp_path: Path, rucio: Rucio, token: str) -> None:
    # The real server answers an unknown DID with 200 and an empty body.
    assert _rest(rucio, token, "/replicas/escape/no-such-file.txt") == (200, "")
    res = _fetch(tmp_path / "1", rucio, token, {"gone": "escape:no-such-file.txt"})
    assert res["gone"]["error"] == (
        f"FetchError: gone: escape:no-such-file.txt: no such DID in Rucio at {rucio.url} (DataIdentifierNotFound)"
    )

    bad = _fetch(
        tmp_path / "2", rucio, "root-ddmlab-unknown-0123456789abcdef0123456789abcdef", {"f": "escape:file1.txt"}
    )
    expired_token = rucio.token()
    rucio.expire(expired_token)
    expired = _fetch(tmp_path / "3", rucio, expired_token, {"f": "escape:file1.txt"})
    for res in (bad, expired):
        err = res["f"]["error"]
        assert err.startswith(f"FetchError: f: Rucio at {rucio.url} refused the token (HTTP 401 CannotAuth"), err
        assert "set a fresh one in RUCIO_ACCESS_TOKEN or RUCIO_TOKEN_FILE" in err
    assert expired_token not in json.dumps(expired)

    none = run_in_bundle(make_bundle(tmp_path / "4", files=[{"name": "f", "uri": "escape:file1.txt"}]), FETCH)
    assert "pip install rucio-clients" in none["f"]["error"] and "RUCIO_HOST" in none["f"]["error"]


def test_manifest_cannot_choose_the_rucio_host(tmp_path: Path, rucio: Rucio, token: str) -> None:
    bundle = make_bundle(tmp_path / "b", files=[{"name": "f", "uri": "escape:file1.txt"}])
    manifest = json.loads((bundle / "nbpack.json").read_text())
    manifest["results"] = {"rucio": {"scope": "escape", "rse": "LOCAL-DISK", "host": rucio.url}}
    (bundle / "nbpack.json").write_text(json.dumps(manifest))
    res = run_in_bundle(bundle, FETCH, {"RUCIO_ACCESS_TOKEN": token, "SSL_CERT_FILE": rucio.ca})
    assert "set RUCIO_HOST and RUCIO_ACCESS_TOKEN" in res["f"]["error"]
    # Nor may the hub send the token in clear.
    plain = rucio.url.replace("https://", "http://")
    res = run_in_bundle(bundle, FETCH, {**rucio.env(token), "RUCIO_HOST": plain})
    assert res["f"]["error"] == (
        f"FetchError: RUCIO_HOST must be an https:// URL (the token would travel in clear to {plain})"
    )


RESULTS = """
b = rt.start()
rt.save_output(b"ra,dec\\n1.5,-2.25\\n", "sources.csv")
rt.save_output("é,ü\\n".encode() * 3000, "deep/more table.csv")
rt.save_output(b"notes", "notes.txt")
print(json.dumps({"zip": str(rt.finish())}))
"""


def test_results_cell_registers_outputs_that_resolve_back_by_did(tmp_path: Path, rucio: Rucio, token: str) -> None:
    bundle = make_bundle(tmp_path / "b")
    manifest = json.loads((bundle / "nbpack.json").read_text())
    manifest["results"] = {
        "rucio": {"scope": "escape", "rse": "LOCAL-DISK", "dataset": "nbpack-results"},
        "outputs": ["*.csv"],
    }
    jsonschema.Draft202012Validator(_schema("bundle-1.0.schema.json")).validate(manifest)
    (bundle / "nbpack.json").write_text(json.dumps(manifest))
    res = run_in_bundle(bundle, RESULTS, rucio.env(token), timeout=120)
    assert "could not copy" not in res["out"], res["out"]
    with zipfile.ZipFile(res["zip"]) as zf:
        ret = json.loads(zf.read("nbpack-return.json"))
        blobs = {o["path"]: zf.read(o["path"]) for o in ret["outputs"]}
    jsonschema.Draft202012Validator(_schema("return-1.0.schema.json")).validate(ret)
    outs = {o["path"]: o for o in ret["outputs"]}
    assert "locations" not in outs["outputs/notes.txt"]
    dids = {}
    for path, rel in (("outputs/sources.csv", "sources.csv"), ("outputs/deep/more table.csv", "deep.more_table.csv")):
        [loc] = outs[path]["locations"]
        assert loc["uri"] == f"escape:{ret['id']}.{rel}"
        dids[path] = loc["uri"]
        data = blobs[path]
        sums = {"adler32": f"{zlib.adler32(data) & 0xFFFFFFFF:08x}", "md5": hashlib.md5(data).hexdigest()}
        assert {k: loc["checksums"][k] for k in sums} == sums
        # Rucio itself holds the replica with the bytes and checksums the runtime computed.
        name = urllib.parse.quote(loc["uri"].split(":", 1)[1])
        did = json.loads(_rest(rucio, token, f"/dids/escape/{name}")[1])
        assert (did["type"], did["bytes"], did["adler32"], did["md5"]) == (
            "FILE",
            len(data),
            sums["adler32"],
            sums["md5"],
        )
        [rep] = _lines(_rest(rucio, token, f"/replicas/escape/{name}")[1])
        assert list(rep["rses"]) == ["LOCAL-DISK"] and rep["states"] == {"LOCAL-DISK": "AVAILABLE"}
    content = _lines(_rest(rucio, token, "/dids/escape/nbpack-results/dids")[1])
    assert {f"{c['scope']}:{c['name']}" for c in content} >= set(dids.values())
    # As with Rucio's own upload, a rule on the dataset keeps the outputs on the RSE.
    [rule] = _lines(_rest(rucio, token, "/dids/escape/nbpack-results/rules")[1])
    assert (rule["rse_expression"], rule["account"], rule["copies"]) == ("LOCAL-DISK", "root", 1)

    # A new bundle naming those DIDs (and the dataset) gets the same bytes back through Rucio.
    back = _fetch(tmp_path / "back", rucio, token, {"one": dids["outputs/sources.csv"], "all": "escape:nbpack-results"})
    assert Path(back["one"]["path"]).read_bytes() == blobs["outputs/sources.csv"]
    folder = {p.name: p.read_bytes() for p in Path(back["all"]["path"]).iterdir()}
    assert folder[dids["outputs/deep/more table.csv"].split(":", 1)[1]] == blobs["outputs/deep/more table.csv"]

    # The official client agrees: it lists the replica and downloads it, checking adler32 itself.
    did = dids["outputs/deep/more table.csv"]
    proc = rucio.client(f"""
import json
from rucio.client.didclient import DIDClient
from rucio.client.downloadclient import DownloadClient
from rucio.client.replicaclient import ReplicaClient
scope, name = {did!r}.split(":", 1)
[rep] = ReplicaClient().list_replicas([{{"scope": scope, "name": name}}])
content = [c["name"] for c in DIDClient().list_content("escape", "nbpack-results")]
[got] = DownloadClient().download_dids([{{"did": {did!r}, "base_dir": "dl", "no_subdir": True}}])
print(json.dumps({{"adler32": rep["adler32"], "bytes": rep["bytes"], "content": content,
                  "state": got["clientState"], "path": got["dest_file_paths"][0]}}))
""")
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen_by_client = json.loads(proc.stdout.strip().splitlines()[-1])
    data = blobs["outputs/deep/more table.csv"]
    assert seen_by_client["adler32"] == f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"
    assert seen_by_client["bytes"] == len(data) and did.split(":", 1)[1] in seen_by_client["content"]
    assert seen_by_client["state"] == "DONE"
    assert (rucio.workdir / seen_by_client["path"]).read_bytes() == data


PUT_TWICE = """
from pathlib import Path
from nbpack_runtime.checksums import checksums_of
from nbpack_runtime.publish import _put_rucio
b = rt.start()
p = Path("outputs") / "x.csv"
p.parent.mkdir(exist_ok=True)
target = {"scope": "escape", "rse": "LOCAL-DISK", "dataset": "escape:twice"}
p.write_bytes(b"1,2,3\\n")
sums = checksums_of(p, ["sha256", "md5", "adler32"])
first = _put_rucio(target, "r-twice", "x.csv", p, sums)
again = _put_rucio(target, "r-twice", "x.csv", p, sums)
p.write_bytes(b"other\\n")
try:
    _put_rucio(target, "r-twice", "x.csv", p, checksums_of(p, ["sha256", "md5", "adler32"]))
    err = None
except rt.UploadError as e:
    err = str(e)
solo = {"scope": "escape", "rse": "LOCAL-DISK"}
alone = [_put_rucio(solo, "r-twice", "solo.csv", p, checksums_of(p, ["sha256", "md5", "adler32"]))
         for _ in range(2)]
print(json.dumps({"first": first, "again": again, "err": err, "alone": alone}))
"""


def test_registering_the_same_output_twice_is_harmless_and_other_content_is_refused(
    tmp_path: Path, rucio: Rucio, token: str
) -> None:
    res = run_in_bundle(make_bundle(tmp_path / "b"), PUT_TWICE, rucio.env(token), timeout=120)
    assert res["first"] == res["again"] == "escape:r-twice.x.csv"
    # The second call of each found the replica registered and sent nothing to the storage.
    puts = re.findall(r'"PUT (\S+) HTTP', (rucio.workdir / "log" / "http.log").read_text())
    assert [p.rsplit("/", 1)[1] for p in puts if "/r-twice." in p] == ["r-twice.x.csv", "r-twice.solo.csv"]
    assert res["err"].startswith("escape:r-twice.x.csv already exists in Rucio with other content (FILE, 6 bytes")
    [rep] = _lines(_rest(rucio, token, "/replicas/escape/r-twice.x.csv")[1])
    assert rep["adler32"] == f"{zlib.adler32(b'1,2,3' + bytes([10])) & 0xFFFFFFFF:08x}"
    assert [c["name"] for c in _lines(_rest(rucio, token, "/dids/escape/twice/dids")[1])] == ["r-twice.x.csv"]
    assert len(_lines(_rest(rucio, token, "/dids/escape/twice/rules")[1])) == 1
    # Without a dataset the rule is on the file itself, once however often it is sent.
    assert res["alone"] == ["escape:r-twice.solo.csv"] * 2
    [rule] = _lines(_rest(rucio, token, "/dids/escape/r-twice.solo.csv/rules")[1])
    assert (rule["rse_expression"], rule["state"]) == ("LOCAL-DISK", "OK")


def test_results_without_rucio_settings_keep_the_return_bundle(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b")
    manifest = json.loads((bundle / "nbpack.json").read_text())
    manifest["results"] = {"rucio": {"scope": "escape", "rse": "LOCAL-DISK"}}
    (bundle / "nbpack.json").write_text(json.dumps(manifest))
    res = run_in_bundle(bundle, 'rt.start(); rt.save_output(b"x", "a.csv"); print(json.dumps({"z": str(rt.finish())}))')
    assert "could not copy outputs/a.csv to rucio: results to Rucio need RUCIO_HOST" in res["out"]
    assert Path(res["z"]).is_file()


def test_without_rest_settings_the_installed_rucio_client_fetches_files_and_datasets(
    tmp_path: Path, rucio: Rucio
) -> None:
    # A hub with rucio-clients configured (its own rucio.cfg and credentials) but no RUCIO_HOST/RUCIO_ACCESS_TOKEN:
    # the runtime hands the DIDs to the official DownloadClient. Runs in the rucio-clients venv (no pyarrow there).
    bundle = make_bundle(
        tmp_path / "b", files=[{"name": "f", "uri": "escape:file1.txt"}, {"name": "ds", "uri": "escape:demo-dataset"}]
    )
    (bundle / "_driver.py").write_text("import json\nimport nbpack_runtime as rt\n" + FETCH)
    proc = rucio.client(
        f"import runpy, sys; sys.path.insert(0, {str(bundle)!r}); runpy.run_path({str(bundle / '_driver.py')!r})",
        env={"NBPACK_CACHE": str(tmp_path / "cache"), "NBPACK_LOCAL_RSES": "LOCAL-DISK"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(res["f"]["path"]).read_bytes() == CONTENT["file1.txt"], res
    assert {p.name: p.read_bytes() for p in Path(res["ds"]["path"]).iterdir()} == CONTENT
    assert {f["did"] for f in res["ds"]["fetched"]["files"]} == {"escape:file1.txt", "escape:file2.dat"}
