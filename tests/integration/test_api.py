"""The HTTP API in-process over a bundle really executed by a kernel: returns (upload, download, tokens, bad bodies)
and the run bundle's bytes and ranges; every response checked against openapi.yaml. The rest of the API, which
needs no kernel, is in tests/unit/test_api.py (shared set-up: tests/api_helpers.py)."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import pytest

from nbpack.local.execute import run_bundle
from tests.api_helpers import H, app, bundle, client, create, sign_token, token_of
from tests.openapi_check import check_response

__all__ = ["app", "bundle", "client"]  # the shared module-wide fixtures, used here by name


@pytest.fixture(scope="module")
def executed(client, bundle, tmp_path_factory) -> dict:
    """The bundle downloaded over the API and really executed once: its zip, return zip and return token."""
    resp = client.get(f"/api/v1/bundles/{bundle['id']}/download", headers=H)
    check_response(resp)
    work = tmp_path_factory.mktemp("run")
    zpath = work / "bundle.zip"
    zpath.write_bytes(resp.get_data())
    result = run_bundle(zpath, work / "return.zip", timeout=120)
    assert result.status == "completed", result.error
    with zipfile.ZipFile(zpath) as zf:
        token = json.loads(zf.read("nbpack.json"))["returns"]["token"]
    return {
        "bid": bundle["id"],
        "bundle_zip": zpath.read_bytes(),
        "return_zip": result.return_path.read_bytes(),
        "token": token,
    }


@pytest.fixture(scope="module")
def uploaded(client, executed) -> dict:
    """The executed return uploaded once (201)."""
    resp = client.post(
        f"/api/v1/bundles/{executed['bid']}/returns",
        data=executed["return_zip"],
        content_type="application/zip",
        headers={"Authorization": f"Bearer {executed['token']}"},
    )
    doc = check_response(resp)
    assert resp.status_code == 201, doc
    return doc


# ------------------------------------------------------------------ the document itself


# ------------------------------------------------------------------ create


def test_manifest_never_has_the_return_token(client, bundle, executed):
    manifest = check_response(client.get(f"/api/v1/bundles/{bundle['id']}", headers=H))
    assert "token" not in manifest["returns"]
    assert executed["token"] not in json.dumps(manifest)


# ------------------------------------------------------------------ auth


# ------------------------------------------------------------------ links and tokens


def test_landing_page_refuses_bad_tokens(client, bundle, executed):
    bid = bundle["id"]
    good = token_of(bundle["links"]["landing"])
    other = create(client, {"title": "Other", "catalogs": [{"name": "o", "rows": [{"z": 1}]}]})
    cases = {
        "token_missing": f"/b/{bid}",
        "token_invalid": f"/b/{bid}?t={good[:-3]}{'AAA' if not good.endswith('AAA') else 'BBB'}",
        "token_expired": f"/b/{bid}?t={sign_token('read', bid, time.time() - 5)}",
        "token_scope": f"/b/{bid}?t={executed['token']}",  # a return token is no read token
        "token_bundle": f"/b/{bid}?t={token_of(other['links']['landing'])}",
    }
    for code, url in cases.items():
        resp = client.get(url)
        doc = check_response(resp)
        assert (resp.status_code, doc["error"]) == (403, code), url


# ------------------------------------------------------------------ downloads


def test_download_exact_bytes_and_ranges(client, bundle, executed):
    bid = bundle["id"]
    for url, headers in ((f"/api/v1/bundles/{bid}/download", H), (bundle["links"]["download"], {})):
        resp = client.get(url, headers=headers)
        check_response(resp)
        data = resp.get_data()
        assert resp.status_code == 200 and data == executed["bundle_zip"]
        assert int(resp.headers["Content-Length"]) == len(data)
        part = client.get(url, headers={**headers, "Range": "bytes=10-99"})
        check_response(part)
        assert part.status_code == 206 and part.get_data() == data[10:100]
        assert part.headers["Content-Range"] == f"bytes 10-99/{len(data)}"
        tail = client.get(url, headers={**headers, "Range": "bytes=-7"})
        assert tail.status_code == 206 and tail.get_data() == data[-7:]
        beyond = client.get(url, headers={**headers, "Range": f"bytes={len(data) + 5}-"})
        check_response(beyond)
        assert beyond.status_code == 416
        huge = client.get(url, headers={**headers, "Range": f"bytes={'9' * 4301}-"})  # issue 20: was a 500
        assert huge.status_code == 200 and huge.get_data() == data


# ------------------------------------------------------------------ returns


def test_return_upload_is_idempotent_and_listed(client, executed, uploaded):
    bid = executed["bid"]
    assert uploaded["bundle_id"] == bid and uploaded["status"] == "completed"
    again = client.post(
        f"/api/v1/bundles/{bid}/returns",
        data=executed["return_zip"],
        content_type="application/zip",
        headers={"Authorization": f"Bearer {executed['token']}"},
    )
    assert again.status_code == 200 and check_response(again)["id"] == uploaded["id"]
    listed = check_response(client.get(f"/api/v1/bundles/{bid}/returns", headers=H))
    assert [r["id"] for r in listed["returns"]] == [uploaded["id"]]
    manifest = check_response(client.get(uploaded["links"]["manifest"], headers=H))
    # One id: bundle_id is the handle, as in the listing; the content the notebook ran on is content_id.
    content_id = json.loads(zipfile.ZipFile(io.BytesIO(executed["bundle_zip"])).read("nbpack.json"))["id"]
    assert manifest["id"] == uploaded["id"] and manifest["bundle_id"] == bid == listed["bundle_id"]
    assert manifest["content_id"] == content_id


def test_return_download_file_and_html(client, executed, uploaded):
    base = f"/api/v1/bundles/{executed['bid']}/returns/{uploaded['id']}"
    resp = client.get(f"{base}/download", headers=H)
    check_response(resp)
    assert resp.get_data() == executed["return_zip"]
    manifest = check_response(client.get(base, headers=H))
    with zipfile.ZipFile(io.BytesIO(executed["return_zip"])) as zf:
        name = manifest["notebook"]
        resp = client.get(f"{base}/files/{name}", headers=H)
        check_response(resp)
        assert resp.status_code == 200 and resp.get_data() == zf.read(name)
        assert resp.headers["Content-Disposition"].startswith("attachment")
    missing = client.get(f"{base}/files/outputs/nothing.txt", headers=H)
    assert missing.status_code == 404 and check_response(missing)["error"] == "not_found"
    page = client.get(f"{base}/notebook.html", headers=H)
    check_response(page)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<script" not in html.lower()
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_return_tokens_are_scoped(client, bundle, executed, uploaded):
    bid = executed["bid"]
    read = token_of(bundle["links"]["landing"])
    other = create(client, {"title": "Other", "catalogs": [{"name": "o", "rows": [{"z": 1}]}]})
    cases = [
        (bid, {}, "token_missing"),
        (bid, {"Authorization": f"Bearer {read}"}, "token_scope"),  # read token as return token
        (bid, {"Authorization": f"Bearer {sign_token('return', bid, time.time() - 5)}"}, "token_expired"),
        (other["id"], {"Authorization": f"Bearer {executed['token']}"}, "token_bundle"),
    ]
    for target, headers, code in cases:
        resp = client.post(
            f"/api/v1/bundles/{target}/returns",
            data=executed["return_zip"],
            content_type="application/zip",
            headers=headers,
        )
        doc = check_response(resp)
        assert (resp.status_code, doc["error"]) == (403, code)
    # the right token of another bundle, with this return: the return names its bundle
    nonce = client.application.extensions["nbpack"].handles.load(other["id"]).nonce
    other_token = sign_token("return", other["id"], time.time() + 600, nonce)
    resp = client.post(
        f"/api/v1/bundles/{other['id']}/returns",
        data=executed["return_zip"],
        content_type="application/zip",
        headers={"Authorization": f"Bearer {other_token}"},
    )
    assert resp.status_code == 403 and check_response(resp)["error"] == "token_bundle"
    assert check_response(client.get(f"/api/v1/bundles/{other['id']}/returns", headers=H))["returns"] == []


def _evil_zip(good: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        dst.writestr("../evil", b"escaped")
    return out.getvalue()


@pytest.mark.parametrize("kind", ["garbage", "empty", "traversal"])
def test_bad_return_bodies_store_nothing(client, app, executed, uploaded, kind):
    bid = executed["bid"]
    body = {"garbage": b"this is not a zip", "empty": b"", "traversal": _evil_zip(executed["return_zip"])}[kind]
    before = check_response(client.get(f"/api/v1/bundles/{bid}/returns", headers=H))
    resp = client.post(
        f"/api/v1/bundles/{bid}/returns",
        data=body,
        content_type="application/zip",
        headers={"Authorization": f"Bearer {executed['token']}"},
    )
    doc = check_response(resp)
    assert 400 <= resp.status_code < 500, doc
    assert check_response(client.get(f"/api/v1/bundles/{bid}/returns", headers=H)) == before
    store = Path(app.extensions["nbpack"].config.storage_url)
    assert not list(store.parent.rglob("evil"))


# ------------------------------------------------------------------ delete, health, metrics
