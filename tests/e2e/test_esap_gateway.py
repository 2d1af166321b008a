"""nbpack plugged into the real ESAP gateway (tests/vendor/esap-api-gateway at 9c6f7fc, Python 3.10, its own pins).

The gateway adopts nbpack-esap with settings and one URL line (tests/esap/); nbpack serves ESAP's facility and
workflow lists exactly as the gateway answers them, no overlay. A signed-in user saves a basket the way esap-gui's
Save Basket does, follows the GUI's Deploy link, the launch link, clones, runs the notebook in a real kernel, returns;
nbpack's webhook reaches the app, and the user's returns list shows the return with working view and download links.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from nbpack.client import Client
from nbpack.clock import now
from nbpack.local.execute import run_folder
from nbpack.webhooks import outbox
from nbpack.webhooks.signing import signed_headers
from tests.fixtures.esap_gateway import SIGN_IN, Gateway, esap_venv
from tests.fixtures.service import ServiceProcess, service_env
from tests.helpers import file_server, template_notebook

pytestmark = pytest.mark.slow

TENANT = "esap"
ANALYSIS = """\
names = sorted(catalogs)
print(names)
nbpack_runtime.save_value("catalogs", names)
nbpack_runtime.save_value("vo_reg_columns", catalogs["vo_reg"].column_names)
nbpack_runtime.save_output(("\\n".join(names) + "\\n").encode(), "catalogs.txt")"""

# What esap-gui's results pages put in BasketContext (the GUI PATCHes these as {"shopping_cart": [...]}).
LOTSS = "https://vo.astron.nl/getproduct/LoTSS-DR2/P003+41-mosaic.fits"
GUI_BASKET = [
    {"archive": "vo_reg", "record": ["P001+40", "10.25", "54.1", "2", LOTSS, "Ångström, 5"]},
    {"archive": "samp", "record": [1, 10.5, None, "https://example.org/run/x.MS", 9007199254740993]},
    {
        "archive": "astron_vo",
        "record": {
            "dataset": "ivoa://astron/lotss",
            "dataset_name": "LoTSS-DR2",
            "result": f"P003+41,12.0,40.0,{LOTSS}",
            "query": "https://vo.astron.nl/tap/sync?QUERY=SELECT+*",
            "title": "P003+41",
            "thumbnail": "https://vo.astron.nl/thumb/P003+41.png",
            "url": "https://vo.astron.nl/getproduct?ID=ivo://astron/lotss/P003%2B41-cube.fits",
            "name": "P003+41",
        },
    },
    {
        "archive": "apertif",
        "record": {
            "name": "image_mf_02.fits",
            "dataProductSubType": "continuumMF",
            "ra": 342.16,
            "url": "https://webdav.example.org/apertif/APERTIF_DR1_Imaging/190809042_AP_B034/image_mf_02.fits",
        },
    },
    {
        "archive": "rucio",
        "record": {
            "scope": "LOFAR",
            "name": "L123_SB000.MS",
            "type": "FILE",
            "parent": "LOFAR:L123",
            "level": 0,
            "bytes": 1048576,
        },
    },  # fmt: skip
    {"archive": "zooniverse", "catalog": "project", "project_id": "10996", "category": "subjects"},
    {"archive": "multi_query", "record": {"name": "M31", "url": "https://example.org/d/m31_r.fits"}},
]


def _whsec() -> str:
    """A Standard Webhooks secret: whsec_ and base64 of random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class Browser:
    """A signed-in user's cookie jar against the gateway; redirects are looked at, not followed."""

    def __init__(self, base: str, session: str) -> None:
        self.base, self.cookie = base, f"sessionid={session}"

    def call(self, method: str, path: str, body: object = None) -> tuple[int, dict[str, str], bytes]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            path if path.startswith("http") else self.base + path, data=data, method=method,
            headers={"Cookie": self.cookie, **({"Content-Type": "application/json"} if data else {})},
        )  # fmt: skip
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(req, timeout=300) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def json(self, path: str) -> dict:
        status, _, body = self.call("GET", path)
        assert status == 200, body[:500]
        return json.loads(body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def esap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One gateway and one nbpack service for the module: ESAP's lists fetched from the gateway feed nbpack."""
    python, before, after = esap_venv()
    tmp = tmp_path_factory.mktemp("esap")
    api_key, hook_secret = secrets.token_urlsafe(24), _whsec()
    svc = ServiceProcess({}, tmp / "service.log")
    gw = Gateway.start(
        python,
        tmp / "gateway",
        {"NBPACK_URL": svc.url, "NBPACK_API_KEY": api_key, "NBPACK_WEBHOOK_SECRET": hook_secret},
    )
    try:
        # ESAP's lists exactly as the gateway serves them, no overlay
        (tmp / "facilities.json").write_text(json.dumps(gw.get_json("/esap-api/ida/facilities/search")))
        (tmp / "workflows.json").write_text(json.dumps(gw.get_json("/esap-api/ida/workflows/search")))
        svc.env = service_env(
            str(tmp / "store"),
            f"{TENANT}={api_key}",
            esap_facilities_file=str(tmp / "facilities.json"),
            payloads_file=str(tmp / "workflows.json"),
            webhook_secrets=f"{TENANT}={hook_secret}",
            webhook_allow=f"{TENANT}={gw.url}",  # the gateway is plain http on this machine
            payload_allow="127.0.0.1",  # the workflows' git repositories are served from this machine too
        )
        svc.start()
        yield {"gateway": gw, "service": svc, "api_key": api_key, "secret": hook_secret, "pins": (before, after)}
    finally:
        svc.stop()
        gw.stop()


def _sign_in(gw: Gateway, user_name: str) -> Browser:
    session = gw.shell(SIGN_IN.format(user_name=user_name, email=f"{user_name}@example.org", sub=secrets.token_hex(8)))
    return Browser(gw.url, session.strip().splitlines()[-1])


def _workflow_repo(folder: Path, name: str, notebook: bytes) -> Path:
    """A git repository served as plain files (dumb HTTP), as a GitLab-hosted workflow is reached."""
    work = folder / f"{name}-work"
    work.mkdir()
    (work / "analysis.ipynb").write_bytes(notebook)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "workflow"]):
        subprocess.run(["git", "-c", "user.email=t@e", "-c", "user.name=t", *args], cwd=work, check=True, timeout=60)
    bare = folder / f"{name}.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True, timeout=60)
    subprocess.run(["git", "update-server-info"], cwd=bare, check=True, timeout=60)
    return bare


def test_the_pins_of_the_gateway_are_unchanged(esap: dict) -> None:
    before, after = esap["pins"]
    changed = {name: (v, after.get(name)) for name, v in before.items() if after.get(name) != v}
    assert changed == {}
    added = set(after) - set(before)
    assert {"nbpack-client", "nbpack-esap"} <= added and added <= {"nbpack-client", "nbpack-esap", "standardwebhooks"}
    assert after["django"] == "4.0.2" and after["numpy"] == "1.22.2" and after["djangorestframework"] == "3.13.1"


def test_deploy_run_return_and_the_users_returns_list(esap: dict, tmp_path: Path) -> None:
    gw, svc = esap["gateway"], esap["service"]
    repos = tmp_path / "repos"
    repos.mkdir()
    _workflow_repo(repos, "analysis", template_notebook(ANALYSIS))
    with file_server(repos) as served:
        repo_url = f"{served}/analysis.git"
        # an operator lists the workflow in ESAP's IDA registry (as ESAP's admin would)
        gw.shell(
            "from ida.models import Workflow; Workflow.objects.create(name='nbpack e2e', description='e2e',"
            f" url={repo_url!r}, ref='main', filepath='analysis.ipynb', workflowtype='notebook',"
            " keywords='nbpack', author='', runtimePlatform='Python')"
        )
        alice = _sign_in(gw, "alice")
        # Save Basket, as SaveBasketButton.js does: the profile URL from the list, then PATCH the whole cart
        profile = alice.json("/esap-api/accounts/user-profiles/")["results"][0]
        assert profile["user_name"] == "alice"
        status, _, body = alice.call("PATCH", "/esap-api/accounts/user-profiles/alice/", {"shopping_cart": GUI_BASKET})
        assert status == 200, body[:500]
        stored = alice.json("/esap-api/accounts/user-profiles/alice/")["shopping_cart"]
        assert [json.loads(i["item_data"]) for i in stored] == GUI_BASKET  # item_data: JSON text, as ESAP keeps it

        # the GUI's Deploy link exactly as Interactive.js builds it (not URL-encoded)
        status, headers, body = alice.call(
            "GET", f"/esap-api/ida/deploy?facility=https://mybinder.org/&workflow={repo_url}"
        )
        assert status == 302, body[:800]
        launch = headers["Location"]
        assert launch.startswith(svc.url)
        status, headers, _ = alice.call("GET", launch)
        assert status == 302
        binder = urlsplit(headers["Location"])
        # the MyBinder facility launches as ESAP launches it: v2/git/<nbpack git URL>/<ref>
        assert (binder.scheme, binder.netloc) == ("https", "mybinder.org") and binder.path.startswith("/v2/git/")
        git_url = unquote(binder.path.split("/")[3])
        assert git_url.startswith(svc.url)

        clone = tmp_path / "clone"
        subprocess.run(["git", "clone", "-q", git_url, str(clone)], check=True, timeout=120)
        manifest = json.loads((clone / "nbpack.json").read_text())
        # nothing in the basket was left out: a catalog per archive, every URL and the DID as a file
        assert not manifest.get("skipped")
        assert {c["name"] for c in manifest["catalogs"]} >= {"vo_reg", "samp", "astron_vo", "apertif", "rucio"}
        names = {f["name"] for f in manifest["files"]}
        assert {"x.MS", "L123_SB000.MS", "image_mf_02.fits", "m31_r.fits", "P003_41-mosaic.fits"} <= names
        assert manifest["payload"]["source"]["url"] == repo_url

        # a real kernel runs it; its results cell uploads the return with the bundle's token, as on a hub
        result = run_folder(clone, tmp_path / "return.zip", timeout=240, upload=True)
        assert result.status == "completed", result.error

    # the webhook reaches the app; the user's returns list shows it (bounded wait: delivery is asynchronous)
    deadline = time.monotonic() + 90
    listed: list = []
    while time.monotonic() < deadline and not listed:
        listed = alice.json("/esap-api/nbpack/returns")["returns"]
        time.sleep(0.5)
    assert len(listed) == 1, gw.log_tail()
    entry = listed[0]
    bid, rid = entry["bundle_id"], entry["return_id"]
    nbpack = Client(svc.url, esap["api_key"])
    assert [r["id"] for r in nbpack.returns(bid)] == [rid] and nbpack.get(bid)["handle"]["owner"] == "alice"
    assert entry["facility"] == "MyBinder" and entry["workflow"] == repo_url and entry["status"] == "completed"
    values = {v["name"]: v["data"] for v in nbpack.get_return(bid, rid)["values"]}
    assert "vo_reg" in values["catalogs"] and values["vo_reg_columns"][:2] == ["col_1", "col_2"]
    status, headers, page = alice.call("GET", entry["links"]["view"])
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"catalogs" in page
    status, _, zipped = alice.call("GET", entry["links"]["download"])
    assert status == 200, gw.log_tail(40)
    assert zipped == result.return_path.read_bytes()

    # a re-delivered notification (same webhook-id, signed afresh) is stored once; a tampered or stale one refused
    hook = f"{gw.url}/esap-api/nbpack/hook"
    notice = outbox.notice_for(TENANT, bid, rid, hook, "completed", now())
    body = notice.body.encode()

    def deliver(data: bytes, headers: dict[str, str]) -> tuple[int, dict]:
        req = urllib.request.Request(
            hook, data=data, method="POST", headers={**headers, "Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    assert deliver(body, signed_headers([esap["secret"]], notice.id, body)) == (
        200,
        {"stored": True, "duplicate": True},
    )
    tampered = body.replace(b'"completed"', b'"failed"')
    assert deliver(tampered, signed_headers([esap["secret"]], notice.id, body))[0] == 401
    stale = signed_headers([esap["secret"]], notice.id, body, now().replace(year=2025))
    assert deliver(body, stale)[0] == 401
    assert deliver(body, signed_headers([_whsec()], notice.id, body))[0] == 401
    assert len(alice.json("/esap-api/nbpack/returns")["returns"]) == 1

    # another user sees none of it
    bob = _sign_in(gw, "bob")
    assert bob.json("/esap-api/nbpack/returns")["returns"] == []
    assert bob.call("GET", entry["links"]["view"])[0] == 404
    assert bob.call("GET", entry["links"]["download"])[0] == 404
    # and nobody signed out
    assert Browser(gw.url, "nobody").call("GET", "/esap-api/nbpack/returns")[0] == 401


def test_an_ossr_workflow_on_a_facility_nbpack_does_not_know(esap: dict, tmp_path: Path) -> None:
    # A workflow ESAP does not list (named by its repository URL, as ESAP's Deploy treats OSSR entries) on a
    # facility missing from nbpack's list: the bundle's landing page. An empty basket is no basket.
    gw, svc = esap["gateway"], esap["service"]
    _workflow_repo(tmp_path, "ossr", template_notebook("print('ossr')"))
    carol = _sign_in(gw, "carol")
    with file_server(tmp_path) as served:
        status, headers, body = carol.call(
            "GET", f"/esap-api/ida/deploy?facility=https://hub.example.org/&workflow={served}/ossr.git"
        )
    assert status == 302, body[:800]
    landing = urlsplit(headers["Location"])
    assert f"{landing.scheme}://{landing.netloc}" == svc.url and landing.path.startswith("/b/")
    assert carol.call("GET", headers["Location"])[0] == 200
    # nbpack refusing the bundle is a small page with its reason, never a traceback
    status, headers, body = carol.call(
        "GET", "/esap-api/ida/deploy?facility=https://mybinder.org/&workflow=https://127.0.0.1:9/none.git"
    )
    assert status in (422, 502) and headers["Content-Type"].startswith("text/html") and b"Traceback" not in body
