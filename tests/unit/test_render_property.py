"""Every valid bundle renders: manifests drawn from the bundle schema itself (every optional field present or not,
any value the schema allows), made into real bundle zips, stored through the real Flask app (POST application/zip)
and shown on the landing page (200), and described by `nbpack inspect`.

The strategy is derived from schemas/bundle-1.0.schema.json by a small walker over the keywords that schema uses.
hypothesis-jsonschema (PyPI, 0.23.1, the newest) was tried first: with the Hypothesis this project runs (6.170) it
fails on its first draw (``AttributeError: 'many' object has no attribute 'more'``, a Hypothesis internal it
relies on). Every drawn manifest is checked against the schema with jsonschema, so the walker cannot drift from it.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from datetime import UTC
from importlib import resources
from pathlib import Path
from typing import Any

import nbformat
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from nbpack.bundle import schema
from nbpack.bundle.build import MANIFEST, bundle_id_for, open_bundle, write_zip
from nbpack.bundle.inspect import describe
from tests.helpers import make_app
from tests.hypothesis_profiles import examples

API_KEY = "render-property-key"
SCHEMA = json.loads(resources.files("nbpack.schemas").joinpath("bundle-1.0.schema.json").read_text("utf-8"))
REPO = Path(__file__).resolve().parents[2]

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
ANY_JSON = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def strategy(node: dict[str, Any], root: dict[str, Any] = SCHEMA) -> st.SearchStrategy[Any]:
    """Values valid against ``node``, for the keywords the bundle schema uses (others fail loudly)."""
    if "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/$defs/"), ref
        return st.deferred(lambda: strategy(root["$defs"][ref.removeprefix("#/$defs/")], root))
    if "const" in node:
        return st.just(node["const"])
    kind = node.get("type")
    if kind is None:
        assert not set(node) - {"description"}, node
        return ANY_JSON
    if kind == "object":
        props = {k: strategy(v, root) for k, v in node.get("properties", {}).items()}
        required = set(node.get("required", []))
        fixed = st.fixed_dictionaries(
            {k: v for k, v in props.items() if k in required},
            optional={k: v for k, v in props.items() if k not in required},
        )
        if node.get("additionalProperties", True) is False:
            return fixed
        names = st.text(min_size=1, max_size=10).filter(lambda k: k not in props)
        extra = st.dictionaries(names, ANY_JSON, max_size=2)
        return st.tuples(fixed, extra).map(lambda pair: {**pair[1], **pair[0]})
    if kind == "array":
        return st.lists(strategy(node.get("items", {}), root), max_size=3)
    if kind == "string":
        if "pattern" in node:
            return st.from_regex(node["pattern"], fullmatch=True).filter(
                lambda s: len(s) <= node.get("maxLength", 10**6)
            )
        if node.get("format") == "date-time":
            return st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z"))
        return st.text(min_size=node.get("minLength", 0), max_size=min(node.get("maxLength", 40), 40))
    if kind == "integer":
        return st.integers(min_value=node.get("minimum"), max_value=2**53)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    raise AssertionError(f"the walker does not know {node}")


def _valid(m: dict) -> bool:
    try:
        schema.validate(m, "bundle")
    except Exception:  # noqa: BLE001 - a draw the walker got wrong (e.g. a propertyNames clash) is just discarded
        return False
    return True


MANIFESTS = strategy(SCHEMA).filter(_valid)


def _sha(path: Path) -> tuple[str, int]:
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


def make_bundle(drawn: dict, stage: Path, out: Path) -> dict:
    """A bundle zip with the drawn manifest: real files where the manifest points at files (the notebook with its two
    tagged cells, each catalog as Parquet with its row count), contents and id computed; all else as drawn."""
    m = json.loads(json.dumps(drawn))
    m["payload"]["notebook"] = "notebook.ipynb"
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("import nbpack_runtime", metadata={"tags": [m["cells"]["bootstrap"]]}),
            nbformat.v4.new_markdown_cell(m["title"]),
            nbformat.v4.new_code_cell("nbpack_runtime.finish()", metadata={"tags": [m["cells"]["results"]]}),
        ]
    )
    (stage / "notebook.ipynb").write_text(nbformat.writes(nb), "utf-8")
    (stage / "catalogs").mkdir()
    for i, cat in enumerate(m["catalogs"]):
        cat["path"] = f"catalogs/c{i}.parquet"
        cat["rows"] = cat["rows"] % 5
        pq.write_table(pa.table({"x": pa.array(range(cat["rows"]), pa.int64())}), stage / cat["path"])
        cat["sha256"], cat["bytes"] = _sha(stage / cat["path"])
    m["contents"] = [
        {"path": p.relative_to(stage).as_posix(), "sha256": _sha(p)[0], "bytes": _sha(p)[1]}
        for p in sorted(stage.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    ]
    m["id"] = bundle_id_for(m)
    schema.validate(m, "bundle")
    (stage / MANIFEST).write_text(json.dumps(m, indent=1, sort_keys=True) + "\n", "utf-8")
    write_zip(stage, out)
    return m


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - Flask test client
    tmp = tmp_path_factory.mktemp("render")
    overlay = tmp / "hubs.toml"
    # Facilities so the landing page ranks hubs for each drawn bundle too (sites, packages, GPU, memory).
    overlay.write_text(
        '["SURF/ASTRON JupyterHub"]\nsites = ["SARA-DCACHE"]\npackages = ["astropy==6.0.1"]\n'
        'gpu = true\nmemory_gb = 8\n["ESCAPE BinderHub"]\nlaunch = "binderhub"\n'
    )
    app = make_app(
        tmp,
        api_keys=API_KEY,
        hubs_file=str(overlay),
        esap_facilities_file=str(REPO / "examples" / "esap_facilities.json"),
    )
    return app.test_client()


@settings(
    max_examples=examples(1 / 3),  # each case is a whole create and landing page through the app
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
@given(drawn=MANIFESTS)
def test_every_valid_bundle_renders(client, drawn: dict) -> None:  # noqa: ANN001
    with tempfile.TemporaryDirectory(prefix="nbpack-render-") as tmp:
        stage, zpath = Path(tmp) / "stage", Path(tmp) / "b.zip"
        stage.mkdir()
        m = make_bundle(drawn, stage, zpath)
        with open_bundle(zpath) as bf:
            text = describe("bundle", bf)  # nbpack inspect
        assert m["id"] in text and all(f["name"] in text for f in m["files"])
        resp = client.post(
            "/api/v1/bundles", data=zpath.read_bytes(), content_type="application/zip", headers={"X-API-Key": API_KEY}
        )
    assert resp.status_code in (200, 201), resp.get_json()
    landing = resp.get_json()["links"]["landing"]
    page = client.get(landing[landing.index("/b/") :])
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    body = page.get_data(as_text=True)
    assert str(escape(m["title"])) in body
    for f in m["files"]:
        assert str(escape(f["name"])) in body
