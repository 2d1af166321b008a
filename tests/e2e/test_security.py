"""Hostile credentials and hostile notebooks over HTTP: every token-protected route refuses every bad token with
403 JSON, API keys are kept hashed and compared in constant time, secrets never reach the service log, and
notebook HTML (landing page and returned notebook) runs nothing in headless Chromium.

Runtime-side refusals (plain-http file URLs without ``allow_http``; a bad download never replacing a good cached
copy) are covered in tests/integration/test_runtime.py and not repeated here.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import json
import os
import re
import secrets
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from itsdangerous import URLSafeSerializer

from nbpack.client import Client
from nbpack.local.execute import run_bundle
from tests.fixtures.service import service_env
from tests.helpers import make_app
from tests.openapi_check import check_response
from tests.unit.test_security import SECRET

OTHER_SECRET = "another-service-" + "y" * 20
KEY = "security-api-key-1"
HUB = "Local Hub"


def _sign(secret: str, scope: str, bid: str, exp: float) -> str:
    """A token made the way nbpack.hub.links signs, with any key and expiry (to forge what must be refused)."""
    ser = URLSafeSerializer(
        [secret],
        salt=f"nbpack.token.{scope}",
        signer_kwargs={"digest_method": hashlib.sha256, "key_derivation": "hmac"},
    )
    return ser.dumps({"b": bid, "s": scope, "exp": int(exp)})


def _b64(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode().rstrip("=")


def _hubs_file(folder: Path) -> Path:
    path = folder / "hubs.toml"
    path.write_text(f'[[hubs]]\nname = "{HUB}"\nurl = "https://hub.invalid/"\nlaunch = "nbgitpuller"\n')
    return path


def _bundle_token(zip_bytes: bytes) -> str:
    with zipfile.ZipFile(__import__("io").BytesIO(zip_bytes)) as zf:
        return json.loads(zf.read("nbpack.json"))["returns"]["token"]


# ------------------------------------------------------------------ tokens on every protected route


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """An in-process app with a hub registry and two bundles A and B: their ids, read and return tokens."""
    root = tmp_path_factory.mktemp("security")
    app = make_app(root, secret_key=SECRET, api_keys=KEY, hubs_file=str(_hubs_file(root)))
    client = app.test_client()
    out = {"app": app, "client": client}
    for name in ("a", "b"):
        resp = client.post(
            "/api/v1/bundles",
            headers={"X-API-Key": KEY},
            json={"title": f"Bundle {name}", "catalogs": [{"name": "t", "rows": [{"v": 1 if name == "a" else 2}]}]},
        )
        assert resp.status_code == 201, resp.get_json()
        doc = resp.get_json()
        zbytes = client.get(f"/api/v1/bundles/{doc['id']}/download", headers={"X-API-Key": KEY}).get_data()
        out[name] = {
            "id": doc["id"],
            "read": doc["links"]["landing"].split("?t=", 1)[1],
            "return": _bundle_token(zbytes),
            "git": doc["links"]["git"].split("/git/", 1)[1].split("/")[0],
        }
    return out


def _landing(c, bid: str, t: str):  # noqa: ANN001, ANN202 - Flask test client and response
    return c.get(f"/b/{bid}", query_string={"t": t})


def _download(c, bid: str, t: str):  # noqa: ANN001, ANN202
    return c.get(f"/b/{bid}/download", query_string={"t": t})


def _launch(c, bid: str, t: str):  # noqa: ANN001, ANN202
    return c.get(f"/b/{bid}/launch/{urllib.parse.quote(HUB, safe='')}", query_string={"t": t})


def _git_refs(c, bid: str, t: str):  # noqa: ANN001, ANN202
    return c.get(
        f"/git/{urllib.parse.quote(t, safe='') or '%20'}/{bid}.git/info/refs",
        query_string={"service": "git-upload-pack"},
    )


def _git_upload_pack(c, bid: str, t: str):  # noqa: ANN001, ANN202
    return c.post(
        f"/git/{urllib.parse.quote(t, safe='') or '%20'}/{bid}.git/git-upload-pack",
        data=b"0000",
        content_type="application/x-git-upload-pack-request",
    )


def _upload_header(c, bid: str, t: str):  # noqa: ANN001, ANN202
    return c.post(
        f"/api/v1/bundles/{bid}/returns",
        data=b"not a zip",
        content_type="application/zip",
        headers={"Authorization": f"Bearer {t}"},
    )


def _upload_query(c, bid: str, t: str):  # noqa: ANN001, ANN202
    return c.post(
        f"/api/v1/bundles/{bid}/returns", data=b"not a zip", content_type="application/zip", query_string={"t": t}
    )


# route name → (call, token scope, status a good token gets: proof the refusals below are about the token)
ROUTES = {
    "landing": (_landing, "read", 200),
    "download": (_download, "read", 200),
    "launch": (_launch, "read", 302),
    "git_info_refs": (_git_refs, "git", 200),
    "git_upload_pack": (_git_upload_pack, "git", 200),
    "return_upload_bearer": (_upload_header, "return", 400),
    "return_upload_query": (_upload_query, "return", 400),
}


def _bad_tokens(world: dict, scope: str) -> dict[str, tuple[str, str]]:
    """Every way a token for bundle A with ``scope`` can be wrong: name → (token, expected error code)."""
    a, b = world["a"], world["b"]
    other_scope = "return" if scope in ("read", "git") else "read"
    good = a[scope]
    payload, sig = good.split(".", 1)
    later = time.time() + 3600
    flipped = sig[:-2] + ("AA" if not sig.endswith("AA") else "BB")
    return {
        "tampered_signature": (f"{payload}.{flipped}", "token_invalid"),
        # B's payload under A's signature: the classic "change the id, keep the signature" forgery.
        "tampered_payload": (f"{_b64({'b': b['id'], 's': scope, 'exp': int(later)})}.{sig}", "token_invalid"),
        "tampered_expiry": (f"{_b64({'b': a['id'], 's': scope, 'exp': int(later) + 10**8})}.{sig}", "token_invalid"),
        "expired": (_sign(SECRET, scope, a["id"], time.time() - 5), "token_expired"),
        "other_key": (_sign(OTHER_SECRET, scope, a["id"], later), "token_invalid"),
        "wrong_scope": (a[other_scope], "token_scope"),
        "other_bundle": (b[scope], "token_bundle"),
        "scope_claim_forged": (_sign(SECRET, other_scope, a["id"], later).split(".")[0] + "." + sig, "token_invalid"),
        "garbage": ("not-a-token", "token_invalid"),
        "overlong": (good + "A" * 600, "token_invalid"),
        "empty": ("", "token_missing"),
    }


@pytest.mark.parametrize("route", list(ROUTES))
def test_every_bad_token_is_refused_on_every_protected_route(world: dict, route: str) -> None:
    call, scope, ok = ROUTES[route]
    client, a = world["client"], world["a"]
    control = call(client, a["id"], a[scope])
    assert control.status_code == ok, (route, control.status_code, control.get_data()[:300])
    refused = 0
    for kind, (token, code) in _bad_tokens(world, scope).items():
        if kind == "empty" and route.startswith("git"):
            code = "token_invalid"  # a path segment cannot be empty: the git helpers send a blank one
        resp = call(client, a["id"], token)
        doc = check_response(resp)
        assert resp.status_code == 403, (route, kind, resp.status_code, resp.get_data()[:300])
        assert set(doc) == {"error", "message"} and doc["error"] == code, (route, kind, doc)
        assert token not in doc["message"] or not token, (route, kind)  # the refusal never echoes the token
        refused += 1
    assert refused == 11
    listed = client.get(f"/api/v1/bundles/{a['id']}/returns", headers={"X-API-Key": KEY}).get_json()
    assert listed["returns"] == []  # nothing was ingested on the way


# ------------------------------------------------------------------ API keys


# ------------------------------------------------------------------ secrets never logged (real gunicorn)


def _no_redirect_get(url: str) -> int:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", parts.path + ("?" + parts.query if parts.query else ""))
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def _status(req: urllib.request.Request | str) -> int:
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code


def test_tokens_and_api_key_never_reach_the_log(start_service, tmp_path: Path) -> None:
    key = "log-key-" + secrets.token_urlsafe(16)
    svc = start_service(
        service_env(
            str(tmp_path / "store"), key, cache_dir=str(tmp_path / "cache"), hubs_file=str(_hubs_file(tmp_path))
        )
    )
    client = Client(svc.url, key)
    created = client.create({"title": "Logged", "catalogs": [{"name": "t", "rows": [{"v": 1}, {"v": 2}]}]})
    bid, links = created["id"], created["links"]
    read = links["landing"].split("?t=", 1)[1]
    assert (
        _status(urllib.request.Request(f"{svc.url}/api/v1/bundles/{bid}", headers={"Authorization": f"Bearer {key}"}))
        == 200
    )
    assert _status(links["landing"]) == 200
    assert _status(links["download"]) == 200
    assert _no_redirect_get(links["launch"][HUB]) == 302
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", links["git"], str(clone)],
        check=True,
        timeout=120,
        capture_output=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    assert json.loads((clone / "nbpack.json").read_text())["id"] == created["content_id"]
    dest = tmp_path / "bundle.zip"
    dest.write_bytes(urllib.request.urlopen(links["download"], timeout=60).read())
    ret = _bundle_token(dest.read_bytes())
    result = run_bundle(dest, tmp_path / "return.zip", upload=True, timeout=120)  # Bearer upload by the runtime
    assert result.status == "completed", result.error
    again = urllib.request.Request(
        f"{svc.url}/api/v1/bundles/{bid}/returns?t={urllib.parse.quote(ret)}",
        data=result.return_path.read_bytes(),
        method="POST",
        headers={"Content-Type": "application/zip"},
    )
    assert _status(again) == 200
    # Refusals carry secrets too: a return token on the read routes, a read token as a return token.
    assert _status(f"{svc.url}/b/{bid}?t={ret}") == 403
    assert _status(f"{svc.url}/git/{ret}/{bid}.git/info/refs?service=git-upload-pack") == 403
    assert (
        _status(
            urllib.request.Request(
                f"{svc.url}/api/v1/bundles/{bid}/returns",
                data=b"x",
                method="POST",
                headers={"Authorization": f"Bearer {read}"},
            )
        )
        == 403
    )
    assert (
        _status(urllib.request.Request(f"{svc.url}/api/v1/bundles/{bid}", headers={"X-API-Key": key + "-wrong"})) == 401
    )
    svc.stop()
    log = svc.log_path.read_text(errors="replace")
    assert log.count('"logger": "nbpack.access"') >= 12, log[-2000:]
    assert "/git/REDACTED/" in log and "t=REDACTED" in log  # the requests were logged, redacted
    for name, secret in (("read token", read), ("return token", ret), ("API key", key)):
        assert secret not in log, f"the {name} is in the service log"
        if "." in secret:  # nor the signature part on its own
            assert secret.rsplit(".", 1)[1] not in log, f"the {name}'s signature is in the service log"


# ------------------------------------------------------------------ hostile notebooks in Chromium


class _Canary:
    """A local HTTP server that counts every request: the payloads try to reach it."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _hit(self) -> None:
                hits.append(f"{self.command} {self.path}")
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = do_HEAD = _hit

            def log_message(self, *args: object) -> None:
                pass

        self.hits = hits
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Canary:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _payloads(canary: str) -> dict[str, str]:
    """Named HTML payloads; each would set window.__pwned, pop a dialog, navigate or fetch the canary."""
    js = f"window.__pwned=1;alert(1);fetch('{canary}/js')"
    return {
        "script": f"<script>{js}</script>",
        "img_onerror": f'<img src=x onerror="{js}">',
        "js_link": f'<a id="jslink" href="javascript:{js}">click me</a>',
        "data_link": f'<a id="datalink" href="data:text/html,<script>{js}</script>">data link</a>',
        "svg_onload": f'<svg xmlns="http://www.w3.org/2000/svg" onload="{js}"><circle r="3"/></svg>',
        "iframe_srcdoc": f'<iframe srcdoc="<script>parent.{js}</script>"></iframe>',
        "object": f'<object data="{canary}/object" type="text/html"></object>',
        "embed": f'<embed src="{canary}/embed">',
        "style": (
            f"<style>body{{background:url('{canary}/style');width:expression(alert(1))}}"
            f"@import url('{canary}/import');</style><p style=\"background:url('{canary}/inline')\">s</p>"
        ),
        "meta_refresh": f'<meta http-equiv="refresh" content="0;url={canary}/meta">',
        "base_href": f'<base href="{canary}/base/">',
        "form": f'<form id="evilform" action="{canary}/form" method="post"><input name="q" value="1">'
        f'<button id="formbtn" type="submit">send</button></form>',
        "link_stylesheet": f'<link rel="stylesheet" href="{canary}/link.css">',
        "mxss_noscript": f'<noscript><p title="</noscript><img src=x onerror={js.replace(" ", "")}>">',
        "mxss_math": f'<math><mtext><table><mglyph><style><img src=x onerror="{js}">',
        "img_js_src": f'<img src="javascript:{js}">',
        "video_poster": f'<video poster="{canary}/poster" src="{canary}/video"></video>',
    }


def _svg(canary: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'onload="window.__pwned=3">'
        f"<script>window.__pwned=5;fetch('{canary}/svgscript')</script>"
        f'<image xlink:href="{canary}/svgimage" width="2" height="2"/>'
        f'<a xlink:href="javascript:window.__pwned=6"><text y="10">x</text></a>'
        f'<foreignObject><iframe src="{canary}/svgframe"></iframe></foreignObject></svg>'
    )


def _hostile_notebook(canary: str) -> dict:
    """Markdown cells with every payload; a stored HTML/SVG output; code that displays them again when run."""
    payloads = _payloads(canary)
    md = "# Hostile\n\n" + "\n\n".join(f"<div>{p}</div>" for p in payloads.values())
    html_all = "".join(payloads.values()) + "<b>bold output</b>"
    code = nbformat.v4.new_code_cell(
        "from IPython.display import HTML, SVG, Markdown, display\n"
        f"display(HTML({html_all!r}))\n"
        f"display(SVG({_svg(canary)!r}))\n"
        f"display(Markdown({md!r}))\n"
        "print('executed output')\n"
    )
    code.outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": html_all, "text/plain": "<HTML>"}),
        nbformat.v4.new_output("display_data", data={"image/svg+xml": _svg(canary), "text/plain": "<SVG>"}),
    ]
    raw = nbformat.v4.new_raw_cell(payloads["script"])
    raw.metadata["format"] = "text/html"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(md), code, raw])
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"x{i}"
    return json.loads(nbformat.writes(nb))


# What sanitising must have removed from the live DOM: elements that load or run things, event handlers,
# script/data URLs; the page's own <style> in <head> is allowed.
_DOM_PROBE = """() => {
  const bad = [];
  for (const el of document.querySelectorAll(
      'body script, iframe, object, embed, svg, math, body style, meta[http-equiv], base, form, link, video')) {
    bad.push(el.tagName.toLowerCase());
  }
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      const v = attr.value.trim().toLowerCase();
      if (attr.name.startsWith('on') || attr.name === 'srcdoc' || attr.name === 'style' && v.includes('url(')
          || /^(javascript|vbscript|data:text)/.test(v)) {
        bad.push(el.tagName.toLowerCase() + '@' + attr.name);
      }
    }
  }
  return bad;
}"""


def _visit(context, url: str, canary: _Canary) -> dict:  # noqa: ANN001 - playwright BrowserContext
    """Open ``url``, click what could run, wait; what ran: dialogs, console, navigations, CSP, marker, page text."""
    page = context.new_page()
    dialogs: list[str] = []
    navigations: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("framenavigated", lambda f: navigations.append(f.url) if f == page.main_frame else None)
    try:
        resp = page.goto(url)
        assert resp is not None and resp.status == 200, (url, resp and resp.status)
        page.wait_for_load_state("load")
        clicked = 0
        for selector in ("#jslink", "#datalink", "#formbtn"):
            loc = page.locator(selector)
            if loc.count():
                loc.first.click(timeout=5000, no_wait_after=True)
                clicked += 1
        page.wait_for_timeout(1500)  # meta refresh, timers and late fetches would show by now
        return {
            "csp": resp.headers.get("content-security-policy", ""),
            "dialogs": dialogs,
            "pwned": page.evaluate("window.__pwned"),
            "url": page.url,
            "navigations": navigations,
            "text": page.locator("body").inner_text(),
            "dom": page.evaluate(_DOM_PROBE),
            "clicked": clicked,
            "frames": len(page.frames),
        }
    finally:
        page.close()


@pytest.fixture
def canary() -> Iterator[_Canary]:
    with _Canary() as c:
        yield c


def test_hostile_notebook_runs_nothing_on_landing_or_return_page(
    start_service, browser, canary: _Canary, tmp_path: Path
) -> None:
    key = secrets.token_urlsafe(16)
    svc = start_service(service_env(str(tmp_path / "store"), key, cache_dir=str(tmp_path / "cache")))
    client = Client(svc.url, key)
    created = client.create(
        {"title": "Hostile", "notebook": _hostile_notebook(canary.url), "catalogs": [{"name": "t", "rows": [{"a": 1}]}]}
    )
    bid = created["id"]
    dest = tmp_path / "bundle.zip"
    dest.write_bytes(urllib.request.urlopen(created["links"]["download"], timeout=60).read())
    result = run_bundle(dest, tmp_path / "return.zip", upload=True, timeout=120)
    assert result.status == "completed", result.error
    rid = client.returns(bid)[0]["id"]
    with zipfile.ZipFile(result.return_path) as zf:  # the payloads really are in the executed outputs
        executed = zf.read(client.get_return(bid, rid)["notebook"]).decode()
    assert "window.__pwned=5" in executed and "iframe srcdoc" in executed and "executed output" in executed
    assert canary.hits == []

    landing_ctx = browser.new_context()
    return_ctx = browser.new_context(extra_http_headers={"X-API-Key": key})
    try:
        for ctx in (landing_ctx, return_ctx):
            ctx.set_default_timeout(30_000)
        pages = {
            "landing": (landing_ctx, created["links"]["landing"], "click me"),
            "return": (return_ctx, f"{svc.url}/api/v1/bundles/{bid}/returns/{rid}/notebook.html", "executed output"),
        }
        for name, (ctx, url, expected_text) in pages.items():
            seen = _visit(ctx, url, canary)
            # No script but, on the landing page, the copy buttons' one, allowed by its hash (never inline or 'self').
            scripts = [d.strip() for d in seen["csp"].split(";") if d.strip().startswith("script-src")]
            assert "default-src 'none'" in seen["csp"], (name, seen["csp"])
            allowed = (
                [] if name == "return" else [s for s in scripts if re.fullmatch(r"script-src 'sha256-[\w+/]+=*'", s)]
            )
            assert scripts == allowed and len(scripts) == (0 if name == "return" else 1), (name, seen["csp"])
            assert "base-uri 'none'" in seen["csp"] and "form-action" in seen["csp"], (name, seen["csp"])
            assert expected_text in seen["text"], name  # the notebook did render
            assert "click me" in seen["text"] and seen["clicked"] >= 1, name  # the js link was there to click
            assert seen["pwned"] is None, name
            assert seen["dialogs"] == [], (name, seen["dialogs"])
            assert seen["url"] == url and seen["navigations"] in ([], [url]), (name, seen["navigations"])
            assert seen["frames"] == 1, name  # no iframe, object or embed survived
            # The payloads' text may show (escaped code); no live element or attribute of theirs may exist.
            assert seen["dom"] == [], (name, seen["dom"])
    finally:
        landing_ctx.close()
        return_ctx.close()
    assert canary.hits == [], canary.hits
