"""Property-based hostile input: every generated case ends in success or an NbpackError, never another error.

Each property runs as many cases as the Hypothesis profile says (tests/hypothesis_profiles.py: a few dozen in the
unit tier, derandomized in CI; ``--hypothesis-profile=random`` or NBPACK_FUZZ_EXAMPLES for a wide hunt); the count
that ran is printed (pytest -s) and recorded as a test property. A case found failing once stays as an ``@example``.
"""

from __future__ import annotations

import copy
import io
import json
import re
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nbpack.bundle import archive
from nbpack.bundle.build import (
    MANIFEST,
    BuildSpec,
    CatalogInput,
    build_bundle,
    bundle_id_for,
    check_bundle,
    open_bundle,
)
from nbpack.bundle.catalog import write_catalog
from nbpack.bundle.notebook import notebook_bytes, prepare_notebook, read_notebook
from nbpack.bundle.refs import parse_ref
from nbpack.bundle.returns import RETURN_MANIFEST, check_return, open_return, return_id_for
from nbpack.errors import InvalidInput, InvalidNotebook, NbpackError, UnsafeArchive
from tests.helpers import return_manifest
from tests.hypothesis_profiles import examples

N = examples()
FUZZ = settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))
COUNTS: dict[str, int] = {}

# ------------------------------------------------------------------ strategies

WEIRD_TEXT = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=10),  # lone surrogates too
    st.sampled_from(
        [
            "",
            "\x00",
            "..",
            "../x",
            "/abs",
            "C:x",
            "a\\b",
            "\ud800",
            "\ufeff",
            "e\u0301",
            "NaN",
            "b-" + "0" * 24,
            "r-" + "f" * 24,
            "0" * 64,
            "1980-01-01T00:00:00Z",
            "https://x/y",
            "s:n",
        ]
    ),
    st.integers(min_value=1, max_value=3).map(lambda k: "x" * (10 ** (k + 3))),  # huge strings
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    WEIRD_TEXT,
)
JSON = st.recursive(
    SCALARS,
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(WEIRD_TEXT, kids, max_size=4)),
    max_leaves=12,
)


def deep(depth: int) -> str:
    """A marker that ``encoded`` turns into a JSON value nested ``depth`` levels (recursion limits are input too)."""
    return f"@DEEP{depth}@"


def paths_of(doc: Any, at: tuple = ()) -> list[tuple]:
    """Every path (key/index tuple) inside a JSON document down to 8 levels, the root included."""
    out = [at]
    if len(at) >= 8:
        return out
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths_of(v, at + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths_of(v, at + (i,))
    return out


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> Any:
    """A valid document with a few fields dropped, replaced by other JSON, or deeply nested."""
    doc = copy.deepcopy(valid)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = paths_of(doc)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["drop", "replace", "replace", "deep", "dup-list"]))
        if not path:
            return draw(JSON) if op != "deep" else deep(draw(st.integers(10, 5000)))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        if op == "drop":
            del parent[key]
        elif op == "deep":
            parent[key] = deep(draw(st.integers(10, 5000)))
        elif op == "dup-list" and isinstance(parent[key], list) and parent[key]:
            parent[key] = parent[key] + parent[key]
        else:
            parent[key] = draw(JSON)
    return doc


def encoded(doc: Any) -> bytes:
    """JSON bytes for any generated value; lone surrogates pass as escapes, ``deep`` markers expand."""
    text = json.dumps(doc)
    return re.sub(r'"@DEEP(\d+)@"', lambda m: "[" * int(m[1]) + "1" + "]" * int(m[1]), text).encode()


def with_id(doc: Any, id_for: Callable[[dict[str, Any]], str]) -> Any:
    """The document with its content id recomputed, so a mutation gets past the id check to deeper ones."""
    try:
        return {**doc, "id": id_for(doc)}
    except Exception:  # the test's own helper on a malformed document: leave it as generated
        return doc


def run(name: str, prop: Callable[[], None], record_property: Callable[[str, Any], None]) -> None:
    """Run a hypothesis property, then report and check how many cases it saw."""
    COUNTS[name] = 0
    prop()
    print(f"\n{name}: {COUNTS[name]} generated cases")
    record_property("cases", COUNTS[name])
    assert COUNTS[name] >= N, f"{name} ran only {COUNTS[name]} cases"


def outcome(fn: Callable[[], Any], allowed: type[NbpackError] = NbpackError) -> Any:
    """Call ``fn``: its result, or the ``allowed`` error it raised (anything else fails the test)."""
    try:
        return fn()
    except allowed as exc:
        assert str(exc).strip() and "\n" not in str(exc)[:400], f"unclear message {exc!r}"
        return exc


# ------------------------------------------------------------------ a valid bundle and return, built once


@pytest.fixture(scope="module")
def bundle_parts() -> tuple[dict[str, Any], dict[str, bytes]]:
    """A real bundle's manifest and its other entries."""
    buf = io.BytesIO()
    manifest = build_bundle(
        BuildSpec(
            title="fuzz",
            catalogs=[CatalogInput("c", pa.table({"a": [1, 2]}))],
            files=[{"name": "f", "uri": "https://example.org/f.fits", "checksums": {"adler32": "0a1b2c3d"}}],
        ),
        buf,
    )
    with zipfile.ZipFile(buf) as zf:
        entries = {n: zf.read(n) for n in zf.namelist() if n != MANIFEST}
    return manifest, entries


def zip_of(entries: dict[str, bytes]) -> bytes:
    """Stored (fast) zip of name → bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def return_parts(bundle_parts: tuple[dict[str, Any], dict[str, bytes]]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A hand-made valid return bundle: manifest and entries."""
    manifest, entries = bundle_parts
    nb_name = manifest["payload"]["notebook"]
    files = {nb_name: entries[nb_name], "outputs/result.csv": b"a,b\n1,2\n"}
    return return_manifest(manifest, files, [{"name": "n", "encoder": "json", "data": 3}]), files


def test_fixtures_are_valid(bundle_parts: Any, return_parts: Any) -> None:
    manifest, entries = bundle_parts
    with open_bundle(io.BytesIO(zip_of({MANIFEST: json.dumps(manifest).encode(), **entries}))) as bf:
        assert check_bundle(bf) == []
    doc, files = return_parts
    with open_return(io.BytesIO(zip_of({RETURN_MANIFEST: json.dumps(doc).encode(), **files}))) as rf:
        assert check_return(rf) == []


# ------------------------------------------------------------------ manifests


def bundle_case(name: str, manifest_bytes: bytes, entries: dict[str, bytes]) -> None:
    COUNTS[name] += 1
    data = zip_of({MANIFEST: manifest_bytes, **entries})

    def check() -> list[str]:
        with open_bundle(io.BytesIO(data)) as bf:
            problems = check_bundle(bf)
            assert isinstance(problems, list) and all(isinstance(p, str) for p in problems)
            return problems

    outcome(check)


def test_bundle_manifest_arbitrary_json(bundle_parts: Any, record_property: Any) -> None:
    _, entries = bundle_parts

    @FUZZ
    @given(st.one_of(JSON, st.binary(max_size=64)))
    def prop(doc: Any) -> None:
        bundle_case("bundle-json", doc if isinstance(doc, bytes) else encoded(doc), entries)

    run("bundle-json", prop, record_property)


def test_bundle_manifest_mutations(bundle_parts: Any, record_property: Any) -> None:
    manifest, entries = bundle_parts

    @FUZZ
    @given(mutated(manifest), st.booleans())
    def prop(doc: Any, fix_id: bool) -> None:
        if fix_id:
            doc = with_id(doc, bundle_id_for)
        bundle_case("bundle-mutations", encoded(doc), entries)

    run("bundle-mutations", prop, record_property)


def test_return_manifest_mutations(return_parts: Any, record_property: Any) -> None:
    valid, files = return_parts

    @FUZZ
    @given(st.one_of(mutated(valid), JSON), st.booleans())
    def prop(doc: Any, fix_id: bool) -> None:
        COUNTS["return-mutations"] += 1
        if fix_id:
            doc = with_id(doc, return_id_for)
        data = zip_of({RETURN_MANIFEST: encoded(doc), **files})

        def check() -> list[str]:
            with open_return(io.BytesIO(data)) as rf:
                return check_return(rf)

        outcome(check)

    run("return-mutations", prop, record_property)


# ------------------------------------------------------------------ notebooks


def notebook_case(data: bytes) -> None:
    COUNTS["notebooks"] += 1
    nb = outcome(lambda: read_notebook(data), InvalidNotebook)
    if isinstance(nb, NbpackError):
        return
    ready = outcome(lambda: prepare_notebook(nb), InvalidNotebook)
    if not isinstance(ready, NbpackError):
        # A prepared notebook reads back: it is what goes into the bundle.
        read_notebook(notebook_bytes(ready))


def test_notebooks(bundle_parts: Any, record_property: Any) -> None:
    manifest, entries = bundle_parts
    valid = json.loads(entries[manifest["payload"]["notebook"]])

    @FUZZ
    @given(st.one_of(mutated(valid), mutated(valid), JSON, st.binary(max_size=64)))
    def prop(doc: Any) -> None:
        notebook_case(doc if isinstance(doc, bytes) else encoded(doc))

    run("notebooks", prop, record_property)


# ------------------------------------------------------------------ table inputs

CELL = st.one_of(
    st.integers(-5, 5),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(0, 3), max_size=2),
)
CSV_TEXT = st.lists(
    st.lists(
        st.one_of(st.text(max_size=6), st.sampled_from(['"', '""', "1", "1.5", "nan", "", "true", "\n", ",", "\t"])),
        min_size=1,
        max_size=4,
    ),
    max_size=5,
).map(lambda rows: "\n".join(",".join(r) for r in rows))
ESAP_TYPES = st.sampled_from(
    [
        "boolean",
        "bit",
        "unsignedByte",
        "short",
        "int",
        "long",
        "float",
        "double",
        "char",
        "unicodeChar",
        "doubleComplex",
        "",
        None,
        "bogus",
        3,
    ]
)


@st.composite
def esap_pages(draw: st.DrawFn) -> Any:
    """ESAP query pages with IVOA rows (fields + result strings), often slightly wrong."""
    fields = [
        {
            "name": draw(st.one_of(st.sampled_from(["ra", "dec", "id", "ra"]), WEIRD_TEXT)),
            "datatype": draw(ESAP_TYPES),
            "unit": draw(st.one_of(st.none(), st.just("deg"), SCALARS)),
        }
        for _ in range(draw(st.integers(0, 3)))
    ]
    values = st.one_of(
        st.sampled_from(["1", "-2", "1.5", "1e400", "nan", "true", "?", "", "null", '"a,b"', "x"]), st.text(max_size=4)
    )
    rows = []
    for _ in range(draw(st.integers(0, 3))):
        row_fields = fields if draw(st.booleans()) or not fields else fields[:-1]
        result = ",".join(draw(values) for _ in range(len(fields) + draw(st.sampled_from([0, 0, 0, 1, -1]))))
        rows.append({"fields": row_fields, "result": draw(st.one_of(st.just(result), SCALARS))})
    page: dict[str, Any] = {"results": rows, "service": "vo", "query": "q"}
    if draw(st.booleans()):
        return draw(mutated(page)) if rows else page
    return page


def table_case(source: Any, tmp: Path, fmt: str | None = None) -> None:
    COUNTS["tables"] += 1
    dest = tmp / "out" / "c.parquet"
    before = sorted(tmp.rglob("*"))
    result = outcome(lambda: write_catalog(source, dest, name="c", fmt=fmt))
    if isinstance(result, NbpackError):
        assert not dest.exists(), "a failed write left the catalog file"
        leftovers = [p for p in sorted(tmp.rglob("*")) if p not in before and p.is_file()]
        assert leftovers == [], f"a failed write left {leftovers}"
    else:
        assert dest.is_file() and result["rows"] >= 0
        dest.unlink()


def test_table_inputs(record_property: Any) -> None:
    rows = st.lists(st.dictionaries(st.sampled_from(["a", "b", "c", ""]), CELL, max_size=3), max_size=4)

    @FUZZ
    @given(
        st.one_of(
            st.tuples(st.just("csv"), CSV_TEXT),
            st.tuples(st.just("rows"), rows),
            st.tuples(st.just("page"), esap_pages()),
            st.tuples(st.just("json"), st.one_of(JSON, rows.map(json.dumps))),
        )
    )
    # Found in CI (issue 20): a struct field named "\n" put a newline into the one-line error.
    @example(("rows", [{"a": {"\n": 1}}]))
    @example(("json", [{"a": {"\n": None, "x\ny": 1}}]))
    def prop(case: tuple[str, Any]) -> None:
        kind, value = case
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            if kind == "csv":
                src = tmp / "in.csv"
                src.write_text(value, encoding="utf-8", errors="surrogatepass")
                table_case(src, tmp)
            elif kind == "json":
                src = tmp / "in.json"
                src.write_bytes(value.encode("utf-8", "surrogatepass") if isinstance(value, str) else encoded(value))
                table_case(src, tmp)
            else:
                table_case(value, tmp)

    run("tables", prop, record_property)


# ------------------------------------------------------------------ file references


def test_file_refs(record_property: Any) -> None:
    fields = st.sampled_from(["name", "uri", "size", "checksums", "site", "media_type", "description", "bogus"])
    good = {"name": "f", "uri": "rucio:scope:name", "size": 3, "checksums": {"md5": "0" * 32}}

    @FUZZ
    @given(
        st.one_of(JSON, st.dictionaries(fields, st.one_of(SCALARS, JSON), max_size=5), mutated(good), st.builds(object))
    )
    def prop(raw: Any) -> None:
        COUNTS["refs"] += 1
        ref = outcome(lambda: parse_ref(raw), InvalidInput)
        if not isinstance(ref, NbpackError):
            assert isinstance(ref["name"], str) and isinstance(ref["uri"], str)

    run("refs", prop, record_property)


# ------------------------------------------------------------------ archives


@st.composite
def hostile_zips(draw: st.DrawFn) -> bytes:
    """Zips with generated names, modes, flags and sizes, then byte-level damage."""
    names = st.one_of(
        st.sampled_from(
            [
                "a.txt",
                "d/b.txt",
                "d/",
                "../up",
                "/abs",
                "C:x",
                "a\\b",
                "a//b",
                "a/./b",
                "a.txt",
                "d",
                "é/ü.txt",
                "nbpack.json",
            ]
        ),
        st.text(min_size=0, max_size=8),
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for _ in range(draw(st.integers(0, 4))):
            name = draw(names)
            info = zipfile.ZipInfo(name or "x", (1980, 1, 1, 0, 0, 0))
            info.compress_type = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
            info.external_attr = draw(st.sampled_from([0, 0o100644, 0o120777, 0o40755, 0o20644])) << 16
            data = draw(st.one_of(st.binary(max_size=40), st.just(bytes(3000))))
            try:
                zf.writestr(info, data)
            except ValueError:
                continue
        for info in zf.filelist:
            if draw(st.integers(0, 9)) == 0:
                info.file_size = max(0, info.file_size + draw(st.integers(-5, 5)))
            if draw(st.integers(0, 19)) == 0:
                info.flag_bits |= draw(st.sampled_from([0x1, 0x20, 0x40]))
            if draw(st.integers(0, 19)) == 0:
                info.header_offset = draw(st.integers(0, 200))
    data = bytearray(buf.getvalue())
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at : at + draw(st.integers(1, 40))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


def test_archives(record_property: Any) -> None:
    @FUZZ
    @given(st.one_of(hostile_zips(), st.binary(max_size=64)))
    def prop(data: bytes) -> None:
        COUNTS["archives"] += 1
        with tempfile.TemporaryDirectory() as d:
            dest = Path(d) / "dest"
            dest.mkdir()
            try:
                with archive.open_zip(io.BytesIO(data), archive.Limits(max_entries=8, max_member=4096)) as zf:
                    for info in archive.safe_members(zf):
                        archive.member_sha256(zf, info)
                    written = archive.extract(zf, dest)
            except UnsafeArchive as exc:
                assert str(exc).strip()
                assert list(dest.iterdir()) == [], "a refused archive left files"
                assert sorted(p.name for p in Path(d).iterdir()) == ["dest"], "staging folder left behind"
                return
            root = dest.resolve()
            for path in written:
                assert root in path.resolve().parents and path.is_file() and not path.is_symlink()
            assert len(written) == sum(1 for p in dest.rglob("*") if p.is_file())

    run("archives", prop, record_property)


# ------------------------------------------------------------------ inputs the properties found (kept as plain tests)


def manifest_zip(doc: Any, entries: dict[str, bytes], name: str = MANIFEST) -> io.BytesIO:
    return io.BytesIO(zip_of({name: encoded(doc), **entries}))


def test_found_deep_and_surrogate_manifests(bundle_parts: Any, return_parts: Any) -> None:
    manifest, entries = bundle_parts
    for doc in (
        deep(3000),
        {**manifest, "title": "\ud800"},
        {**manifest, "skipped": [{"item": deep(3000), "reason": "x"}]},
    ):
        with pytest.raises(NbpackError):
            with open_bundle(manifest_zip(doc, entries)) as bf:
                check_bundle(bf)
    valid, files = return_parts
    for doc in (deep(3000), {**valid, "provenance": {"python": "3", "host": "\udfff"}}):
        with pytest.raises(NbpackError):
            with open_return(manifest_zip(doc, files, RETURN_MANIFEST)) as rf:
                check_return(rf)


def test_found_catalog_path_missing_with_consistent_id(bundle_parts: Any) -> None:
    manifest, entries = bundle_parts
    doc = copy.deepcopy(manifest)
    doc["catalogs"][0]["path"] = "catalogs/elsewhere.parquet"
    doc["id"] = bundle_id_for(doc)
    with open_bundle(manifest_zip(doc, entries)) as bf:
        assert any("elsewhere" in p for p in check_bundle(bf))


def test_found_huge_esap_result_and_odd_ref_keys(tmp_path: Path) -> None:
    page = {"results": [{"fields": [{"name": "a"}, {"name": "b"}], "result": "x" * 200_000}]}
    with pytest.raises(NbpackError, match="splits into"):
        write_catalog(page, tmp_path / "c.parquet", name="c")
    assert list(tmp_path.iterdir()) == []
    for raw in ({"\n": None}, {1: "x", "a": 2}):
        with pytest.raises(InvalidInput, match="unknown field") as err:
            parse_ref(raw)
        assert "\n" not in str(err.value)


def test_found_corrupt_member_in_bundle_and_return(bundle_parts: Any, return_parts: Any) -> None:
    manifest, entries = bundle_parts
    data = bytearray(zip_of({MANIFEST: encoded(manifest), **entries}))
    at = data.index(b"nbpack_runtime.start()")  # stored notebook text: damage it behind the CRC's back
    data[at] ^= 0x20
    with pytest.raises(UnsafeArchive, match="corrupt"):
        with open_bundle(io.BytesIO(bytes(data))) as bf:
            check_bundle(bf)
    valid, files = return_parts
    data = bytearray(zip_of({RETURN_MANIFEST: encoded(valid), **files}))
    data[data.index(b"a,b\n1,2")] ^= 0x20
    with pytest.raises(UnsafeArchive, match="corrupt"):
        with open_return(io.BytesIO(bytes(data))) as rf:
            check_return(rf)


def test_found_surrogate_notebook_and_list_datatype(bundle_parts: Any, tmp_path: Path) -> None:
    manifest, entries = bundle_parts
    nb = json.loads(entries[manifest["payload"]["notebook"]])
    nb["cells"][0]["source"] = "\ud800"
    with pytest.raises(InvalidNotebook, match="Unicode"):
        read_notebook(encoded(nb))
    page = {"results": [{"fields": [{"name": "a", "datatype": ["int"]}], "result": "1"}]}
    with pytest.raises(NbpackError, match="datatype"):
        write_catalog(page, tmp_path / "c.parquet", name="c")


def test_found_deep_value_inside_return_manifest(return_parts: Any) -> None:
    valid, files = return_parts
    for depth, why in ((1979, "nested|recursion"), (100, "nested more than 64")):
        doc = {**valid, "values": [{"name": "n", "encoder": "json", "data": deep(depth)}]}
        with pytest.raises(NbpackError, match=why):
            open_return(manifest_zip(doc, files, RETURN_MANIFEST))


def test_found_odd_string_sources_and_row_fields(tmp_path: Path) -> None:
    for source in ("x" * 5000, "\ud800", "a\x00b"):
        with pytest.raises(NbpackError, match="not found"):
            write_catalog(source, tmp_path / "c.parquet", name="c")
    rows = [{"fields": [{"name": "a"}], "result": "1"}, {"fields": [None], "result": "2"}]
    with pytest.raises(NbpackError, match="different fields"):
        write_catalog(rows, tmp_path / "c.parquet", name="c")
    assert list(tmp_path.iterdir()) == []
