"""The HTTP API in-process (Flask test client, local folder storage); every response checked against openapi.yaml.

What needs a bundle really executed by a kernel (returns, ranges of a run's bundle) is in
tests/integration/test_api.py; both share tests/api_helpers.py.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle
from tests.api_helpers import ESAP_PAGE, KEY, SECRET, H, api_app, app, bundle, client, create, token_of
from tests.helpers import make_app
from tests.openapi_check import OpenApiMismatch, check_response, load_spec, validate_json

__all__ = ["app", "bundle", "client"]  # the shared module-wide fixtures, used here by name


def test_openapi_document_loads_and_covers_the_routes(app):
    spec = load_spec()
    assert spec.doc["openapi"].startswith("3.1")
    assert {"apiKey", "returnToken", "linkToken"} <= set(spec.doc["components"]["securitySchemes"])
    # every Flask route (but static) is documented, with the same methods
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        template = rule.rule.replace("<path:", "<").replace("<", "{").replace(">", "}")
        template = template.replace("{name}", "{path}") if "/files/" in template else template
        assert template in spec.doc["paths"], template
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            op = spec.doc["paths"][template][method.lower()]
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")) and template not in ("/healthz", "/api/v1/health"):
                    schema = response.get("$ref") or response["content"]["application/json"]["schema"]["$ref"]
                    assert schema.endswith(
                        (
                            "Error",
                            "BadRequest",
                            "Unauthorized",
                            "Forbidden",
                            "NotFound",
                            "TooLarge",
                            "InternalError",
                            "UpstreamError",
                            "StorageUnavailable",
                            "RangeNotSatisfiable",
                        )
                    ), (template, status)


def test_checker_rejects_what_the_document_forbids():
    with pytest.raises(OpenApiMismatch):
        validate_json({"error": "x"}, {"$ref": "#/components/schemas/Error"})
    with pytest.raises(OpenApiMismatch, match="token"):
        validate_json(
            {"endpoint": "http://h/x", "expires": "2030-01-01T00:00:00Z", "token": "secret"},
            load_spec().doc["components"]["schemas"]["PublicManifest"]["properties"]["returns"],
        )
    with pytest.raises(OpenApiMismatch):  # a relative link is not an absolute URL
        validate_json("/b/x", {"$ref": "#/components/schemas/AbsoluteUrl"})


def test_create_from_inline_rows_then_same_again(client, bundle):
    assert bundle["created"] is True
    for link in ("landing", "download", "git", "manifest"):
        assert bundle["links"][link].startswith("http://localhost/")
    again = create(
        client,
        {
            "title": "Inline rows",
            "catalogs": [{"name": "sources", "rows": [{"id": 1, "ra": 10.5}, {"id": 2, "ra": 11.25}]}],
        },
        201,
    )
    # Same content, a new handle: its own id and links; the content id is shared.
    assert again["id"] != bundle["id"] and again["created"] is True
    assert again["content_id"] == bundle["content_id"] and again["links"]["git"] != bundle["links"]["git"]


def test_create_from_esap_page(client):
    doc = create(client, {"title": "ESAP page", "catalogs": [{"name": "gaia", "esap_page": ESAP_PAGE}]}, 201)
    manifest = check_response(client.get(f"/api/v1/bundles/{doc['id']}", headers=H))
    cat = manifest["catalogs"][0]
    assert cat["rows"] == 2
    assert [c["name"] for c in cat["columns"]] == ["id", "mag", "label"]


def test_create_multipart_with_csv_and_notebook(client):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 6 * 7")])
    req = {"title": "Multipart", "catalogs": [{"name": "stars", "part": "table"}], "notebook_part": "nb"}
    form = {
        "request": json.dumps(req),
        "table": (io.BytesIO(b"id,mag\n1,2.5\n2,3.5\n3,4.5\n"), "stars.csv"),
        "nb": (io.BytesIO(nbformat.writes(nb).encode()), "analysis.ipynb"),
    }
    resp = client.post("/api/v1/bundles", data=form, headers=H, content_type="multipart/form-data")
    doc = check_response(resp)
    assert resp.status_code == 201, doc
    manifest = check_response(client.get(f"/api/v1/bundles/{doc['id']}", headers=H))
    assert manifest["catalogs"][0]["rows"] == 3
    assert manifest["payload"]["notebook"] == "analysis.ipynb"


def test_push_built_zip_twice(client, tmp_path):
    path = tmp_path / "b.zip"
    built = build_bundle(BuildSpec(title="Pushed", catalogs=[CatalogInput("t", [{"a": 1}, {"a": 2}])]), path)
    first = client.post("/api/v1/bundles", data=path.read_bytes(), content_type="application/zip", headers=H)
    second = client.post("/api/v1/bundles", data=path.read_bytes(), content_type="application/zip", headers=H)
    a, b = check_response(first), check_response(second)
    assert (first.status_code, second.status_code) == (201, 201)
    assert a["id"] != b["id"] and a["content_id"] == b["content_id"] == built["id"]


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"", "application/json"),
        (b"title=x", "text/plain"),
        (json.dumps({"title": "x", "surprise": 1}).encode(), "application/json"),
        (json.dumps({"catalogs": [{"name": "c", "rows": [1, 2]}]}).encode(), "application/json"),
        (json.dumps({"catalogs": [{"name": "c", "rows": [{"a": 1}, {"a": "x"}]}]}).encode(), "application/json"),
        (json.dumps({"catalogs": [{"name": "c", "esap_page": {"results": "no"}}]}).encode(), "application/json"),
        (json.dumps({"catalogs": [{"name": "c", "part": "nothing"}]}).encode(), "application/json"),
        (json.dumps({"title": "x", "expires_in": 5}).encode(), "application/json"),
        (json.dumps({"catalogs": [{"name": "c", "rows": [{"a": {"b": 1}}]}]}).encode(), "application/json"),
        (json.dumps({"catalogs": [{"name": "c", "rows": []}]}).encode(), "application/json"),
        (json.dumps({"catalogs": [{"name": "c", "esap_page": {"results": [None]}}]}).encode(), "application/json"),
        (json.dumps({"catalogs": [{"name": "c", "rows": [{"a": 1}]}] * 2}).encode(), "application/json"),
        (json.dumps({"notebook": {}}).encode(), "application/json"),
        (json.dumps({"files": [{"name": "x", "uri": "ftp://host/x"}]}).encode(), "application/json"),
        (json.dumps({"origin": {"api_token": "x"}}).encode(), "application/json"),
        (json.dumps({"payload": "no-catalog-here"}).encode(), "application/json"),
        (json.dumps({"requirements": ["--index-url http://evil"]}).encode(), "application/json"),
        (b"PK\x03\x04 not a zip at all", "application/zip"),
    ],
)
def test_bad_create_requests_are_json_4xx(client, body, content_type):
    resp = client.post("/api/v1/bundles", data=body, content_type=content_type, headers=H)
    doc = check_response(resp)
    assert 400 <= resp.status_code < 500, doc
    assert doc["message"]


def test_multipart_without_request_part(client):
    resp = client.post(
        "/api/v1/bundles",
        data={"table": (io.BytesIO(b"a\n1\n"), "t.csv")},
        headers=H,
        content_type="multipart/form-data",
    )
    assert resp.status_code == 400 and check_response(resp)["error"] == "invalid_input"


ESAP_FACING = [
    ("POST", "/api/v1/bundles"),
    ("GET", "/api/v1/bundles/{bid}"),
    ("DELETE", "/api/v1/bundles/{bid}"),
    ("GET", "/api/v1/bundles/{bid}/links"),
    ("GET", "/api/v1/bundles/{bid}/hubs"),
    ("GET", "/api/v1/bundles/{bid}/download"),
    ("GET", "/api/v1/bundles/{bid}/returns"),
    ("GET", "/api/v1/bundles/{bid}/returns/r-000000000000000000000000"),
    ("GET", "/api/v1/bundles/{bid}/returns/r-000000000000000000000000/download"),
    ("GET", "/api/v1/bundles/{bid}/returns/r-000000000000000000000000/files/outputs/x.txt"),
    ("GET", "/api/v1/bundles/{bid}/returns/r-000000000000000000000000/notebook.html"),
    ("GET", "/api/v1/payloads"),
    ("GET", "/api/v1/payloads/anything"),
]


@pytest.mark.parametrize("method, path", ESAP_FACING)
@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="}],
    ids=["none", "wrong", "bearer", "basic"],
)
def test_api_key_required(client, bundle, method, path, headers):
    resp = client.open(path.format(bid=bundle["id"]), method=method, headers=headers, json={"title": "x"})
    doc = check_response(resp)
    assert resp.status_code == 401 and doc["error"] == "unauthorized"
    assert client.get(f"/api/v1/bundles/{bundle['id']}", headers=H).status_code == 200  # DELETE did nothing


def test_bearer_api_key_accepted(client, bundle):
    resp = client.get(f"/api/v1/bundles/{bundle['id']}", headers={"Authorization": f"Bearer {KEY}"})
    assert resp.status_code == 200 and check_response(resp)["handle"]["id"] == bundle["id"]


def test_landing_page_with_token(client, bundle):
    resp = client.get(bundle["links"]["landing"])
    check_response(resp)
    assert resp.status_code == 200
    assert "Inline rows" in resp.get_data(as_text=True)
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]


def test_page_download_and_launch_need_token(client, bundle):
    bid = bundle["id"]
    for url in (f"/b/{bid}/download", f"/b/{bid}/launch/somehub"):
        resp = client.get(url)
        assert resp.status_code == 403 and check_response(resp)["error"] == "token_missing"
    resp = client.get(f"/b/{bid}/launch/nohub?t={token_of(bundle['links']['landing'])}")
    assert resp.status_code == 404 and check_response(resp)["error"] == "not_found"


def test_links_endpoint_gives_fresh_absolute_links(client, bundle):
    resp = client.get(f"/api/v1/bundles/{bundle['id']}/links?expires_in=3600", headers=H)
    doc = check_response(resp)
    assert resp.status_code == 200 and client.get(doc["links"]["landing"]).status_code == 200
    resp = client.get(f"/api/v1/bundles/{bundle['id']}/links?expires_in=1", headers=H)  # below the 60 s minimum
    assert resp.status_code == 400 and check_response(resp)["error"] == "invalid_input"
    resp = client.get(f"/api/v1/bundles/{bundle['id']}/links?expires_in=soon", headers=H)
    assert resp.status_code == 400 and check_response(resp)["error"] == "invalid_input"


def test_hubs_and_payloads_without_registry(client, bundle):
    assert check_response(client.get(f"/api/v1/bundles/{bundle['id']}/hubs", headers=H))["hubs"] == []
    assert check_response(client.get("/api/v1/payloads?q=x", headers=H)) == {"payloads": []}
    resp = client.get("/api/v1/payloads/nope", headers=H)
    assert resp.status_code == 400 and check_response(resp)["error"] == "invalid_input"


def test_unknown_and_malformed_ids_are_404(client):
    for path in (
        "/api/v1/bundles/b-000000000000000000000000",
        "/api/v1/bundles/not-an-id",
        "/api/v1/bundles/b-000000000000000000000000/returns/r-000000000000000000000000",
    ):
        resp = client.get(path, headers=H)
        assert resp.status_code == 404 and check_response(resp)["error"] == "not_found", path


def test_delete_then_404(client):
    doc = create(client, {"title": "Doomed", "catalogs": [{"name": "d", "rows": [{"q": 1}]}]}, 201)
    resp = client.delete(f"/api/v1/bundles/{doc['id']}", headers=H)
    check_response(resp)
    assert resp.status_code == 204
    for url, headers in ((f"/api/v1/bundles/{doc['id']}", H), (f"/api/v1/bundles/{doc['id']}/download", H)):
        resp = client.get(url, headers=headers)
        assert resp.status_code == 404 and check_response(resp)["error"] == "not_found", url
    for url in (doc["links"]["landing"], doc["links"]["download"], doc["links"]["git"] + "/info/refs"):
        resp = client.get(url)
        assert resp.status_code == 403 and check_response(resp)["error"] == "token_revoked", url
    again = client.delete(f"/api/v1/bundles/{doc['id']}", headers=H)
    assert again.status_code == 404 and check_response(again)


def test_healthz_ok_then_503_when_storage_is_gone(tmp_path):
    app = api_app(tmp_path)
    c = app.test_client()
    resp = c.get("/healthz")
    assert resp.status_code == 200 and check_response(resp)["status"] == "ok"
    store = tmp_path / "store"
    shutil.rmtree(store)
    store.write_text("a regular file where the storage folder was")
    for path in ("/healthz", "/api/v1/health"):
        resp = c.get(path)
        doc = check_response(resp)
        assert resp.status_code == 503 and doc["status"] == "unavailable", path


def test_metrics_count_created_bundles(tmp_path):
    c = make_app(tmp_path, secret_key=SECRET, api_keys=KEY, metrics_token="m" * 24).test_client()
    create(c, {"title": "Counted", "catalogs": [{"name": "m", "rows": [{"k": 1}]}]}, 201)
    create(c, {"title": "Counted", "catalogs": [{"name": "m", "rows": [{"k": 1}]}]}, 201)
    resp = c.get("/metrics", headers={"Authorization": "Bearer " + "m" * 24})
    check_response(resp)
    line = next(ln for ln in resp.get_data(as_text=True).splitlines() if ln.startswith("nbpack_bundles_created_total "))
    assert float(line.split()[1]) == 2.0  # every create is a new handle


def test_unknown_route_is_json_404(client):
    resp = client.get("/api/v1/nothing-here", headers=H)
    assert resp.status_code == 404
    assert set(resp.get_json()) == {"error", "message"}


def test_generated_create_requests_never_fail_with_5xx(client):
    """Requests schemathesis derives from the document: each answer is documented and none is a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_path(str(Path(__file__).parents[2] / "schemas" / "openapi.yaml"))
    op = next(
        r.ok()
        for r in schema.get_all_operations()
        if r.ok().method.upper() == "POST" and r.ok().path == "/api/v1/bundles"
    )
    seen = []

    @settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(op.as_strategy(media_type="application/json"))
    def post(case):
        body = case.body if isinstance(case.body, dict) else {}
        body.pop("callback_url", None)  # a webhook would leave the machine
        resp = client.post("/api/v1/bundles", json=body, headers=H)
        check_response(resp)
        seen.append(resp.status_code)
        assert resp.status_code < 500, resp.get_json()

    post()
    assert len(seen) >= 6
