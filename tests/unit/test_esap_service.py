"""ESAP's query pages through the service in process: one typed catalog with provenance, and the launch link of a
facility whose name holds a slash. The real ESAP gateway is in tests/integration/test_esap_service.py."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from tests.helpers import make_app

API_KEY = "esap-backend-key"


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


HEADERS = {"X-API-Key": API_KEY}


def esap_app(tmp_path: Path, **config: object):
    return make_app(tmp_path, api_keys=API_KEY, **config)


def create_bundle(client, request: dict) -> dict:  # noqa: ANN001 - Flask test client
    resp = client.post("/api/v1/bundles", json=request, headers=HEADERS)
    assert resp.status_code == 201, resp.get_json()
    manifest = client.get(f"/api/v1/bundles/{resp.get_json()['id']}", headers=HEADERS)
    assert manifest.status_code == 200
    # The routes take the handle id; the manifest's own id is the content id.
    return {**manifest.get_json(), "id": manifest.get_json()["handle"]["id"]}


def download_zip(client, bid: str, dest: Path) -> Path:  # noqa: ANN001
    resp = client.get(f"/api/v1/bundles/{bid}/download", headers=HEADERS)
    assert resp.status_code == 200
    dest.write_bytes(resp.get_data())
    return dest


def _ivoa_page(number: int, rows: list[str]) -> dict:
    fields = [
        {"name": "obs_id", "datatype": "char", "ucd": "meta.id"},
        {"name": "s_ra", "datatype": "double", "unit": "deg"},
        {"name": "calib_level", "datatype": "short"},
    ]
    return {
        "requested_page": number,
        "pages": 2,
        "count": 3,
        "query": "SELECT TOP 3 * FROM ivoa.obscore",
        "service": "https://vo.astron.nl/tap",
        "results": [{"dataset": "ivoa.obscore", "fields": fields, "result": r} for r in rows],
    }


def test_query_pages_become_one_typed_catalog_with_provenance(tmp_path: Path) -> None:
    client = esap_app(tmp_path).test_client()
    pages = [_ivoa_page(1, ["P1,10.5,2", "P2,11.25,3"]), _ivoa_page(2, ["P3,,1"])]
    manifest = create_bundle(client, {"catalogs": [{"name": "lotss", "esap_pages": pages}]})

    [cat] = manifest["catalogs"]
    assert cat["rows"] == 3
    assert cat["origin"] == {"service": "https://vo.astron.nl/tap", "query": "SELECT TOP 3 * FROM ivoa.obscore"}
    with zipfile.ZipFile(download_zip(client, manifest["id"], tmp_path / "b.zip")) as zf:
        table = pq.read_table(io.BytesIO(zf.read(cat["path"])))
    assert table.schema.types == [pa.string(), pa.float64(), pa.int16()]
    assert table.column("s_ra").to_pylist() == [10.5, 11.25, None]
    assert table.schema.field("s_ra").metadata[b"unit"] == b"deg"


def test_launch_link_of_a_facility_named_with_a_slash(tmp_path: Path) -> None:
    client = esap_app(tmp_path, esap_facilities_file=str(EXAMPLES / "esap_facilities.json")).test_client()
    bid = client.post(
        "/api/v1/bundles", json={"catalogs": [{"name": "t", "rows": [{"a": 1}]}]}, headers=HEADERS
    ).get_json()["id"]
    links = client.get(f"/api/v1/bundles/{bid}/links", headers=HEADERS).get_json()["links"]
    surf = urlsplit(links["launch"]["SURF/ASTRON JupyterHub"])
    resp = client.get(f"{surf.path}?{surf.query}")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("https://jupyter.escape.surf.nl/")


def test_the_create_answer_says_what_each_basket_item_became(tmp_path: Path) -> None:
    client = esap_app(tmp_path).test_client()
    basket = [
        {"item_data": json.dumps({"archive": "vo_reg", "record": ["P1", "https://h.example/d/a.fits"]})},
        {"item_data": "{broken"},
        {"item_data": json.dumps({"archive": "rucio", "record": {"scope": "S", "name": "x.MS", "bytes": 3}})},
    ]
    resp = client.post("/api/v1/bundles", json={"basket": basket}, headers=HEADERS)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["basket"] == [
        {"item": 0, "archive": "vo_reg", "catalog": "vo_reg", "row": 0, "files": ["a.fits"]},
        {"item": 1, "skipped": "item_data is not valid JSON (Expecting property name enclosed in double quotes)"},
        {"item": 2, "archive": "rucio", "catalog": "rucio", "row": 0, "files": ["x.MS"]},
    ]
    # a basket of which nothing can be used: 422 naming why, and no bundle
    resp = client.post("/api/v1/bundles", json={"basket": basket[1:2]}, headers=HEADERS)
    assert resp.status_code == 422 and resp.get_json()["error"] == "basket_unusable"
    assert "item 0: item_data is not valid JSON" in resp.get_json()["message"]
    assert len(client.get("/api/v1/bundles", headers=HEADERS).get_json()["bundles"]) == 1
