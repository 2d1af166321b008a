"""The whole path through real gunicorn services on both backends: create through the API, the landing page in
Chromium, download, execute in a real kernel, the return uploaded with the bundle's token, read back over the API.
Also: two processes on one bucket serve each other's bundles, hostile notebooks run nothing on the landing page,
and (``NBPACK_BENCH=1``) download throughput and worker memory against a direct boto3 read of the same object."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import urllib.request
import zipfile
from pathlib import Path

import nbformat
import pytest

from nbpack.client import Client, pull
from nbpack.local.execute import run_bundle
from tests.fixtures.service import service_env
from tests.helpers import file_server, template_notebook

CSV = "id,flux\n1,1.5\n2,2.25\n3,3.0\n"
TOTAL = 6.75
SPECTRUM = b"spectrum bytes\n" * 64

CELL = f"""\
import pyarrow.compute as pc
total = pc.sum(catalogs["sources"]["flux"]).as_py()
print(f"total flux {{total}}")
nbpack_runtime.save_value("total_flux", total)
nbpack_runtime.save_value("spectrum_len", len(bundle.file("spectrum").read_bytes()))
nbpack_runtime.save_output(f"{{total}}\\n".encode(), "flux.txt")
assert total == {TOTAL}"""


@pytest.fixture(params=["local", "s3"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store of each backend: a local folder, or a fresh SeaweedFS bucket."""
    if request.param == "local":
        return str(tmp_path / "store")
    bucket = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/nbpack"


def _inputs(tmp_path: Path) -> tuple[Path, Path]:
    csv = tmp_path / "sources.csv"
    csv.write_text(CSV)
    nb = tmp_path / "analysis.ipynb"
    nb.write_bytes(template_notebook(CELL))
    return csv, nb


def _create_request(title: str, base: str) -> dict:
    return {
        "title": title,
        "catalogs": [{"name": "sources", "part": "cat"}],
        "notebook_part": "nb",
        "files": [
            {
                "name": "spectrum",
                "uri": f"{base}/spec.fits",
                "size": len(SPECTRUM),
                "checksums": {"sha256": hashlib.sha256(SPECTRUM).hexdigest()},
            }
        ],
        "options": {"allow_http": True},
    }


def _bundle_manifest(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("nbpack.json"))


def test_create_land_download_run_return(storage_url: str, start_service, page, tmp_path: Path) -> None:
    key = secrets.token_urlsafe(16)
    svc = start_service(service_env(storage_url, key, cache_dir=str(tmp_path / "cache")))
    client = Client(svc.url, key)
    csv, nb = _inputs(tmp_path)
    served = tmp_path / "served"
    served.mkdir()
    (served / "spec.fits").write_bytes(SPECTRUM)
    with file_server(served) as base:
        created = client.create(_create_request("Flux sums", base), {"cat": csv, "nb": nb})
        bid = created["id"]
        assert created["created"] is True and created["title"] == "Flux sums"
        landing = created["links"]["landing"]
        assert landing.startswith(f"{svc.url}/b/{bid}?t=")

        # The landing page as a scientist's browser shows it.
        resp = page.goto(landing)
        assert resp is not None and resp.status == 200
        assert "Flux sums" in page.title()
        assert page.locator("#bundle-title").inner_text() == "Flux sums"
        assert page.locator("#catalogs td.rows").first.inner_text().strip() == "3"
        files_text = page.locator("#files").inner_text()
        assert "spectrum" in files_text and f"{base}/spec.fits" in files_text
        href = page.locator("#download").get_attribute("href")
        got = page.request.get(href)
        assert got.status == 200 and got.headers["content-type"] == "application/zip"
        from_browser = got.body()

        dest = pull(landing, tmp_path / "dl" / "bundle.zip")
        assert dest.read_bytes() == from_browser
        returns = _bundle_manifest(dest)["returns"]
        assert returns["endpoint"] == f"{svc.url}/api/v1/bundles/{bid}/returns" and returns["token"]

        # A real kernel runs it; the results cell uploads the return with the bundle's token.
        result = run_bundle(dest, tmp_path / "return.zip", upload=True, timeout=120)
    assert result.status == "completed", result.error

    listed = client.returns(bid)
    assert len(listed) == 1
    rid = listed[0]["id"]
    assert listed[0]["status"] == "completed" and listed[0]["outputs"] == 1
    out = client.return_file(bid, rid, "outputs/flux.txt", tmp_path / "flux.txt")
    assert out.read_text() == f"{TOTAL}\n"
    values = {v["name"]: v["data"] for v in client.get_return(bid, rid)["values"]}
    assert values == {"total_flux": TOTAL, "spectrum_len": len(SPECTRUM)}
    html = client.return_html(bid, rid)
    assert f"total flux {TOTAL}" in html and "<script" not in html.lower()
    # What the kernel wrote locally is what the service stored.
    stored = client.download_return(bid, rid, tmp_path / "stored-return.zip")
    assert stored.read_bytes() == result.return_path.read_bytes()


def test_two_processes_share_one_bucket(s3_bucket: str, start_service, page, tmp_path: Path) -> None:
    key = secrets.token_urlsafe(16)
    storage, secret = f"s3://{s3_bucket}/shared", secrets.token_urlsafe(32)
    a = start_service(service_env(storage, key, secret_key=secret, cache_dir=str(tmp_path / "cache-a")))
    b = start_service(service_env(storage, key, secret_key=secret, cache_dir=str(tmp_path / "cache-b")))
    csv, nb = _inputs(tmp_path)
    served = tmp_path / "served"
    served.mkdir()
    (served / "spec.fits").write_bytes(SPECTRUM)
    with file_server(served) as base:
        created = Client(a.url, key).create(_create_request("Shared", base), {"cat": csv, "nb": nb})
        bid = created["id"]
        links_b = Client(b.url, key).links(bid)
        assert links_b["landing"].startswith(f"{b.url}/b/{bid}?t=")
        # A's signed link works on B unchanged but for the host: the secret is shared.
        landing_b = created["links"]["landing"].replace(a.url, b.url)
        resp = page.goto(landing_b)
        assert resp is not None and resp.status == 200 and "Shared" in page.title()
        dest = pull(landing_b, tmp_path / "bundle.zip")
        manifest = _bundle_manifest(dest)
        assert manifest["id"] == created["content_id"]

        git_b = created["links"]["git"].replace(a.url, b.url)
        clone = tmp_path / "clone"
        subprocess.run(
            ["git", "clone", "--depth", "1", "-q", git_b, str(clone)],
            check=True,
            timeout=120,
            capture_output=True,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
        assert json.loads((clone / "nbpack.json").read_text())["id"] == created["content_id"]
        assert (clone / "analysis.ipynb").is_file()

        result = run_bundle(dest, tmp_path / "return.zip", upload=False, timeout=120)
    assert result.status == "completed", result.error

    # The bundle's endpoint names A; send the return to B with the bundle's own token.
    req = urllib.request.Request(
        f"{b.url}/api/v1/bundles/{bid}/returns",
        data=result.return_path.read_bytes(),
        method="POST",
        headers={"Authorization": f"Bearer {manifest['returns']['token']}", "Content-Type": "application/zip"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 201
        rid = json.loads(resp.read())["id"]

    client_a = Client(a.url, key)
    assert [r["id"] for r in client_a.returns(bid)] == [rid]
    flux = client_a.return_file(bid, rid, "outputs/flux.txt", tmp_path / "flux.txt")
    assert flux.read_text() == f"{TOTAL}\n"
    # The same bundle pushed to B is a new handle of the same content, with no returns of its own.
    again = Client(b.url, key).push(dest)
    assert again["id"] != bid and again["content_id"] == created["content_id"]
    assert client_a.returns(again["id"]) == []


def _hostile_notebook() -> dict:
    nb = nbformat.v4.new_notebook()
    md = nbformat.v4.new_markdown_cell(
        '# Hello\n<script>window.__pwned=1</script>\n<a href="javascript:window.__pwned=4">x</a>'
    )
    code = nbformat.v4.new_code_cell("display(stuff)")
    code.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "text/html": '<img src=x onerror="window.__pwned=2;alert(2)"><b>bold output</b>',
                "text/plain": "<IPython.core.display.HTML object>",
            },
        ),
        nbformat.v4.new_output(
            "display_data",
            data={
                "image/svg+xml": '<svg xmlns="http://www.w3.org/2000/svg" onload="window.__pwned=3;alert(3)">'
                '<script>window.__pwned=5</script><circle r="4"/></svg>',
                "text/plain": "<svg>",
            },
        ),
    ]
    nb.cells = [md, code]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"h{i}"
    return json.loads(nbformat.writes(nb))


def test_hostile_notebook_runs_nothing_on_the_landing_page(start_service, page, tmp_path: Path) -> None:
    key = secrets.token_urlsafe(16)
    svc = start_service(service_env(str(tmp_path / "store"), key))
    created = Client(svc.url, key).create(
        {
            "title": "Hostile <i>title</i>",
            "notebook": _hostile_notebook(),
            "catalogs": [{"name": "t", "rows": [{"a": 1}]}],
        }
    )
    dialogs: list[str] = []
    console: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("console", lambda m: console.append(m.text))
    resp = page.goto(created["links"]["landing"])
    assert resp is not None and resp.status == 200
    csp = resp.headers.get("content-security-policy", "")
    # One script may run: the copy buttons', by its hash; nothing inline or from anywhere else.
    scripts = [d.strip() for d in csp.split(";") if d.strip().startswith("script-src")]
    assert "default-src 'none'" in csp and len(scripts) == 1
    assert re.fullmatch(r"script-src 'sha256-[A-Za-z0-9+/]+=*'", scripts[0]), scripts
    page.wait_for_load_state("load")
    assert "bold output" in page.locator("#preview").inner_text()
    assert page.locator("#bundle-title").inner_text() == "Hostile <i>title</i>"
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    # Console lines may be CSP refusals (the browser blocking what sanitising left); never our marker running.
    assert not any("pwned" in line and "Refused" not in line for line in console)
    html = page.content().lower()
    assert "onerror" not in html and "onload" not in html and "javascript:" not in html


# -- measurement (NBPACK_BENCH=1) ---------------------------------------------------------------------------


@pytest.mark.skipif(os.environ.get("NBPACK_BENCH") != "1", reason="measurement: set NBPACK_BENCH=1")
def test_measure_download_against_boto3(s3_env, s3_bucket: str, start_service, tmp_path: Path) -> None:
    import boto3

    from bench.download import big_bundle, measure
    from bench.harness import parse_size

    size = parse_size(os.environ.get("NBPACK_BENCH_SIZE", "1GiB"), "bytes")
    key = secrets.token_urlsafe(16)
    svc = start_service(service_env(f"s3://{s3_bucket}/bench", key, cache_dir=str(tmp_path / "cache")))
    zip_path = tmp_path / "big.zip"
    big_bundle(zip_path, size, tmp_path)
    created = Client(svc.url, key, timeout=1800).push(zip_path)
    zip_path.unlink()
    s3 = boto3.client("s3", endpoint_url=s3_env.endpoint)
    # The baseline: the same bytes as one plain object (the handle's stored parts would cost boto3 a GET each).
    with urllib.request.urlopen(created["links"]["download"], timeout=1800) as resp, open(zip_path, "wb") as out:
        shutil.copyfileobj(resp, out, 1 << 20)
    whole = f"bench-whole/{created['id']}.zip"
    s3.upload_file(str(zip_path), s3_bucket, whole)
    zip_path.unlink()
    figures = measure(created["links"]["download"], s3, s3_bucket, [whole], svc.proc.pid)
    print("NBPACK_BENCH download", json.dumps(figures))
    assert figures["bytes"] > size * 0.9
    assert figures["rss_growth_MiB"] < 64, figures
