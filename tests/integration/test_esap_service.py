"""The ESAP-native path through the service: basket and query pages in, facilities, Rucio, data lake, webhook.

Every piece is real: the Flask app (in-process) or gunicorn, SeaweedFS for S3, a Rucio 41 server
(``tests/fixtures/rucio.py``), kernels started by ``nbpack.local.execute.run_bundle``, and a webhook receiver on
127.0.0.1
that checks each signature with the snippet docs/esap.md gives ESAP.
"""

from __future__ import annotations

import hashlib
import io
import json
import ssl
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import nbformat
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import trustme

from nbpack.client import Client
from nbpack.local.execute import run_bundle
from tests.fixtures.rucio import CONTENT, Rucio
from tests.fixtures.service import service_env
from tests.unit.test_esap_service import API_KEY, EXAMPLES, HEADERS, create_bundle, download_zip, esap_app
from tests.unit.test_webhook import verify_nbpack  # the docs/esap.md snippet, kept identical by a test there

WEBHOOK_SECRET = "shared-with-esap-0123456789"


class Receiver:
    """ESAP's webhook endpoint on 127.0.0.1: answers ``statuses`` in turn (then 200), keeps every delivery."""

    def __init__(self, statuses: tuple[int, ...] = (), tls: ssl.SSLContext | None = None) -> None:
        self.statuses = list(statuses)
        self.deliveries: list[dict] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                with receiver.arrived:
                    receiver.deliveries.append(
                        {
                            "status": status,
                            "body": body,
                            "delivery": self.headers.get("webhook-id"),
                            "headers": dict(self.headers),
                            "verified": verify_nbpack(WEBHOOK_SECRET, "default", body, dict(self.headers)) is not None,
                        }
                    )
                    receiver.arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.scheme = "https" if tls else "http"
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}/esap-api/nbpack/hook"

    def wait_accepted(self, timeout: float = 20) -> list[dict]:
        """Deliveries so far, once one was answered 2xx (or the bounded wait ran out)."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while not any(d["status"] < 300 for d in self.deliveries) and time.monotonic() < deadline:
                self.arrived.wait(timeout=max(0.0, deadline - time.monotonic()))
            return list(self.deliveries)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # Callback URLs must be https: the receiver has a trustme certificate the service (in-process or gunicorn,
    # which inherits the environment) trusts through SSL_CERT_FILE.
    ca = trustme.CA()
    ca_file = tmp_path / "webhook-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    made: list[Receiver] = []

    def make(statuses: tuple[int, ...] = ()) -> Receiver:
        made.append(Receiver(statuses, tls))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _notebook(*sources: str) -> dict:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return json.loads(nbformat.writes(nb))


def _stored(data: dict) -> dict:
    """A basket item as ESAP's accounts API stores it: item_data is JSON text."""
    return {"id": 1, "item_data": json.dumps(data)}


WEBDAV = "https://webdav.grid.surfsara.nl:2880/pnfs/grid.sara.nl/data/apertif/disk/"


def _apertif(name: str) -> dict:
    return {
        "archive": "apertif",
        "record": {
            "name": name,
            "PID": f"190809042_AP_B034_{name}",
            "dataProductType": "image",
            "dataProductSubType": "continuumMF",
            "ra": 342.16,
            "dec": 33.94,
            "fov": 1.0,
            "release": "APERTIF_DR1_Imaging",
            "thumbnail": "https://alta.astron.nl/thumb.png",
            "storageRef": f"cold:190809042_AP_B034/{name}",
            "url": f"{WEBDAV}{name}",
        },
    }


def _rucio(name: str, **extra: object) -> dict:
    return {
        "archive": "rucio",
        "record": {
            "name": name,
            "parent": "LOFAR:L1",
            "level": 0,
            "bytes": 1048576,
            "scope": "LOFAR_ASTRON_GRANGE",
            "type": "FILE",
            **extra,
        },
    }


def test_basket_becomes_catalogs_per_archive_file_refs_and_listed_skips(tmp_path: Path) -> None:
    client = esap_app(tmp_path).test_client()
    basket = {
        "results": [
            {
                "user_name": "ada",
                "shopping_cart": [
                    _stored(_apertif("image_mf_02.fits")),
                    _stored(_apertif("image_mf_03.fits")),
                    _stored(_rucio("L1_SB000.MS.tar", adler32="0a1b2c3d", rse="SARA-DCACHE")),
                    _stored({"archive": "rucio", "record": {"bytes": 12}}),  # no DID: cannot be fetched
                    {"id": 9, "item_data": "{not json"},
                ],
            }
        ]
    }
    manifest = create_bundle(client, {"title": "From my basket", "basket": basket})

    catalogs = {c["name"]: c for c in manifest["catalogs"]}
    assert set(catalogs) == {"apertif", "rucio"}
    assert catalogs["apertif"]["rows"] == 2 and catalogs["rucio"]["rows"] == 1
    files = {f["uri"]: f for f in manifest["files"]}
    assert set(files) == {
        f"{WEBDAV}image_mf_02.fits",
        f"{WEBDAV}image_mf_03.fits",
        "LOFAR_ASTRON_GRANGE:L1_SB000.MS.tar",
    }
    did = files["LOFAR_ASTRON_GRANGE:L1_SB000.MS.tar"]
    assert did["site"] == "SARA-DCACHE" and did["checksums"] == {"adler32": "0a1b2c3d"} and did["size"] == 1048576
    reasons = [s["reason"] for s in manifest["skipped"]]
    assert len(reasons) == 2, manifest["skipped"]
    assert any("scope" in r for r in reasons) and any("JSON" in r for r in reasons)

    with zipfile.ZipFile(
        io.BytesIO(client.get(f"/api/v1/bundles/{manifest['id']}/download", headers=HEADERS).get_data())
    ) as zf:
        table = pq.read_table(io.BytesIO(zf.read(catalogs["apertif"]["path"])))
    assert table.column("name").to_pylist() == ["image_mf_02.fits", "image_mf_03.fits"]
    assert table.schema.field("ra").type == pa.float64()


def test_facility_list_with_overlay_ranks_hubs_through_the_api(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.toml"
    overlay.write_text(
        # ESAP facilities launch as BinderHubs unless this file says they are JupyterHubs (with nbgitpuller)
        '["SURF/ASTRON JupyterHub"]\nlaunch = "nbgitpuller"\nsites = ["SARA-DCACHE"]\npackages = ["astropy==6.0.1"]\n'
        '["CERN SWAN"]\nlaunch = "nbgitpuller"\nsites = ["CERN-EOS"]\n'
    )
    app = esap_app(tmp_path, esap_facilities_file=str(EXAMPLES / "esap_facilities.json"), hubs_file=str(overlay))
    client = app.test_client()
    basket = [_stored(_rucio(f"L1_SB00{i}.MS.tar", rse="SARA-DCACHE" if i < 3 else "CERN-EOS")) for i in range(4)]
    bid = client.post(
        "/api/v1/bundles", json={"basket": basket, "requirements": ["astropy>=6"]}, headers=HEADERS
    ).get_json()["id"]

    resp = client.get(f"/api/v1/bundles/{bid}/hubs", headers=HEADERS)
    assert resp.status_code == 200
    ranking = resp.get_json()["hubs"]
    assert [r["hub"]["name"] for r in ranking] == ["SURF/ASTRON JupyterHub", "CERN SWAN", "ESCAPE BinderHub"]
    surf = ranking[0]
    # ESAP's own fields come from the facility list, nbpack's from the overlay.
    assert surf["hub"]["url"] == "https://jupyter.escape.surf.nl/" and surf["hub"]["sites"] == ["SARA-DCACHE"]
    assert surf["local_share"] == 0.75 and "holds 75% of the referenced bytes at SARA-DCACHE" in surf["reasons"]
    assert ranking[2]["hub"]["launch"] == "binderhub"
    links = client.get(f"/api/v1/bundles/{bid}/links", headers=HEADERS).get_json()["links"]
    assert set(links["launch"]) == {"SURF/ASTRON JupyterHub", "CERN SWAN", "ESCAPE BinderHub"}
    swan = urlsplit(links["launch"]["CERN SWAN"])
    resp = client.get(f"{swan.path}?{swan.query}")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("https://swan.cern.ch/hub/")


@pytest.mark.rucio
def test_basket_rucio_items_round_trip_through_a_real_rucio_server(
    tmp_path: Path, rucio: Rucio, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Basket items naming DIDs the server holds: a file (with the checksum ESAP's replica listing gave) and a
    # dataset. The service makes the bundle; a real kernel runs it; the runtime fetches every file through Rucio.
    client = esap_app(tmp_path).test_client()
    file1 = next(f for f in rucio.registered["files"] if f["name"] == "file1.txt")
    basket = [
        _stored(_rucio("file1.txt", scope="escape", bytes=file1["bytes"], adler32=file1["adler32"])),
        _stored(_rucio("demo-dataset", scope="escape", type="DATASET")),
    ]
    manifest = create_bundle(
        client,
        {
            "basket": basket,
            "notebook": _notebook(
                "import hashlib, json\n"
                "got = {}\n"
                "for name in bundle.files:\n"
                "    p = bundle.file(name)\n"
                "    got[name] = {f.name: hashlib.sha256(f.read_bytes()).hexdigest()\n"
                "                 for f in (sorted(p.iterdir()) if p.is_dir() else [p])}\n"
                "nbpack_runtime.save_value('got', json.dumps(got, sort_keys=True))"
            ),
        },
    )
    assert {f["uri"] for f in manifest["files"]} == {"escape:file1.txt", "escape:demo-dataset"}
    seen = len(rucio.storage_gets())
    for var, value in {
        **rucio.env(rucio.token()),
        "NBPACK_LOCAL_RSES": "LOCAL-DISK",
        "NBPACK_CACHE": str(tmp_path / "dl"),
    }.items():
        monkeypatch.setenv(var, value)
    result = run_bundle(download_zip(client, manifest["id"], tmp_path / "b.zip"), tmp_path / "ret.zip", timeout=180)
    assert result.status == "completed", result.error
    with zipfile.ZipFile(result.return_path) as zf:
        values = {v["name"]: v["data"] for v in json.loads(zf.read("nbpack-return.json"))["values"]}
    sha = {name: hashlib.sha256(data).hexdigest() for name, data in CONTENT.items()}
    names = {f["uri"]: f["name"] for f in manifest["files"]}
    assert json.loads(values["got"]) == {
        names["escape:file1.txt"]: {"file1.txt": sha["file1.txt"]},
        names["escape:demo-dataset"]: sha,
    }
    gets = rucio.storage_gets()[seen:]
    assert sorted(gets) == sorted(["/rucio/escape/4d/b5/file1.txt", "/rucio/escape/63/8b/file2.dat"]), gets


@pytest.mark.s3
def test_results_reach_the_data_lake_and_esap_gets_a_signed_webhook(
    tmp_path: Path,
    s3_env,
    s3_bucket: str,  # noqa: ANN001
    start_service,
    receiver,
) -> None:  # noqa: ANN001
    hook = receiver()
    svc = start_service(
        service_env(
            f"s3://{s3_bucket}/nbpack",
            API_KEY,
            webhook_secret=WEBHOOK_SECRET,
            webhook_allow="default=https://127.0.0.1",
            s3_endpoint=s3_env.endpoint,
            cache_dir=str(tmp_path / "svc-cache"),
        )
    )
    api = Client(svc.url, API_KEY, timeout=60)
    created = api.create(
        {
            "title": "Results to the lake",
            "callback_url": hook.url,
            "results": {"s3": {"bucket": s3_bucket, "prefix": "results", "endpoint": s3_env.endpoint}},
            "notebook": _notebook("nbpack_runtime.save_output(b'ra,dec\\n1,2\\n', 'sources.csv')"),
        }
    )
    bundle = api.download(created["id"], tmp_path / "b.zip")
    result = run_bundle(bundle, tmp_path / "ret.zip", timeout=120, upload=True)
    assert result.status == "completed", result.error

    [summary] = api.returns(created["id"])
    ret = api.get_return(created["id"], summary["id"])
    [out] = [o for o in ret["outputs"] if o["path"] == "outputs/sources.csv"]
    [loc] = out["locations"]
    assert loc["uri"] == f"s3://{s3_bucket}/results/{ret['id']}/sources.csv"
    assert loc["checksums"]["sha256"] == out["sha256"] == hashlib.sha256(b"ra,dec\n1,2\n").hexdigest()
    s3 = boto3.client("s3", endpoint_url=s3_env.endpoint)
    assert s3.get_object(Bucket=s3_bucket, Key=f"results/{ret['id']}/sources.csv")["Body"].read() == b"ra,dec\n1,2\n"

    deliveries = hook.wait_accepted()
    assert len(deliveries) == 1, deliveries
    [d] = deliveries
    assert d["verified"]
    event = json.loads(d["body"])
    assert event["type"] == "return.created" and event["data"] == {
        "tenant": "default",
        "bundle_id": created["id"],
        "return_id": ret["id"],
        "status": "completed",
    }


def test_webhook_answered_500_is_retried_until_esap_accepts_it(tmp_path: Path, receiver) -> None:  # noqa: ANN001
    hook = receiver((500,))
    client = esap_app(tmp_path, webhook_secret=WEBHOOK_SECRET, webhook_allow="default=https://127.0.0.1").test_client()
    manifest = create_bundle(
        client, {"callback_url": hook.url, "notebook": _notebook("nbpack_runtime.save_value('n', 3)")}
    )
    result = run_bundle(download_zip(client, manifest["id"], tmp_path / "b.zip"), tmp_path / "ret.zip", timeout=120)
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        token = json.loads(zf.read("nbpack.json"))["returns"]["token"]
    resp = client.post(
        f"/api/v1/bundles/{manifest['id']}/returns",
        data=result.return_path.read_bytes(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/zip"},
    )
    assert resp.status_code == 201, resp.get_json()

    deliveries = hook.wait_accepted()
    assert [d["status"] for d in deliveries] == [500, 200]
    assert all(d["verified"] for d in deliveries)
    assert deliveries[0]["delivery"] == deliveries[1]["delivery"]  # one notification, retried
    assert json.loads(deliveries[1]["body"])["data"]["return_id"] == resp.get_json()["id"]
    # A tampered body or a forged signature is refused by the same snippet ESAP runs.
    headers = deliveries[1]["headers"]
    assert verify_nbpack(WEBHOOK_SECRET, "default", deliveries[1]["body"] + b" ", headers) is None
    forged = {**headers, "webhook-signature": "v1,AAAA", "webhook-timestamp": str(int(time.time()))}
    assert verify_nbpack(WEBHOOK_SECRET, "default", deliveries[1]["body"], forged) is None
