"""One ``handle.json`` read per request, on every route that names a handle (issue 22).

The service runs in-process (Flask's test client) over a folder store behind a counting wrapper; each request is
made with the counts cleared, its body read to the end, then the reads of the handle's ``handle.json`` are counted.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from nbpack.service.core import Service
from nbpack.store.local import LocalStorage
from server import create_app
from tests.helpers import APP_API_KEY, make_config, return_manifest

AUTH = {"X-API-Key": APP_API_KEY}


class CountingStorage:
    """A storage whose reads (whole, streamed, ranged, stat, exists) are counted per key, and every call is listed
    in ``calls`` as ``(method, key or prefix)``; all else passes through."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reads: Counter[str] = Counter()
        self.calls: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.inner, name)
        if not callable(found):
            return found

        def listed(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, str(args[0]) if args else ""))
            return found(*args, **kwargs)

        return listed

    def read_bytes(self, key: str) -> bytes:
        self.reads[key] += 1
        self.calls.append(("read_bytes", key))
        return self.inner.read_bytes(key)

    def open(self, key: str) -> Any:
        self.reads[key] += 1
        self.calls.append(("open", key))
        return self.inner.open(key)

    def iter_chunks(
        self, key: str, chunk_size: int = 1 << 20, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        self.reads[key] += 1
        self.calls.append(("iter_chunks", key))
        return self.inner.iter_chunks(key, chunk_size, start, end)

    def download_to(self, key: str, path: Path) -> Any:
        self.reads[key] += 1
        self.calls.append(("download_to", key))
        return self.inner.download_to(key, path)


@pytest.fixture
def served(tmp_path: Path) -> tuple[FlaskClient, CountingStorage]:
    return make_served(tmp_path)


def make_served(tmp_path: Path) -> tuple[FlaskClient, CountingStorage]:
    """The service in-process over a counting folder store (the ``served`` fixture)."""
    hubs = tmp_path / "hubs.toml"
    hubs.write_text('[[hubs]]\nname = "Plain"\nurl = "https://plain.example.org/"\n')
    cfg = make_config(tmp_path, hubs_file=str(hubs))
    counting = CountingStorage(LocalStorage(tmp_path / "store"))
    app = create_app({"TESTING": True}, service=Service(cfg, counting))
    return app.test_client(), counting


def _return_zip(manifest: dict[str, Any], notebook: bytes) -> bytes:
    """A hand-made valid return of the bundle: its notebook and one output (no kernel needed)."""
    files = {manifest["payload"]["notebook"]: notebook, "outputs/r.csv": b'name,n\n"\xc3\xa9, \xe2\x9c\x93",1\n'}
    doc = return_manifest(manifest, files, [{"name": "n", "encoder": "json", "data": 2**53 + 1}])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("nbpack-return.json", json.dumps(doc))
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_every_route_reads_the_handle_once(served: tuple[FlaskClient, CountingStorage]) -> None:
    client, storage = served
    created = client.post(
        "/api/v1/bundles",
        json={"title": "Counted", "catalogs": [{"name": "c", "rows": [{"id": 2**53 + 1, "x": None}]}]},
        headers=AUTH,
    ).get_json()
    hid, links = created["id"], created["links"]
    state = f"handles/{hid}/handle.json"
    manifest = client.get(f"/api/v1/bundles/{hid}", headers=AUTH).get_json()
    notebook_name = manifest["payload"]["notebook"]
    catalog = manifest["catalogs"][0]["path"]
    files = links["files"].removeprefix("http://localhost")
    returns_token = manifest["returns"]  # the public manifest has no token: take it from the stored one
    stored = json.loads(storage.inner.read_bytes(f"handles/{hid}/manifest.json"))
    return_token = stored["returns"]["token"]
    notebook = client.get(f"{files}{notebook_name}").get_data()
    assert returns_token.keys() == stored["returns"].keys() - {"token"}

    def local(link: str) -> str:
        return link.removeprefix("http://localhost")

    return_zip = _return_zip(stored, notebook)
    rid = json.loads(zipfile.ZipFile(io.BytesIO(return_zip)).read("nbpack-return.json"))["id"]
    bearer = {"Authorization": f"Bearer {return_token}"}
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("landing", local(links["landing"]), {}),
        ("download", local(links["download"]), {}),
        ("download range", local(links["download"]), {"headers": {"Range": "bytes=10-99"}}),
        ("launch", local(links["launch"]["Plain"]), {}),
        ("member", f"{files}{catalog}", {}),
        ("member range", f"{files}{catalog}", {"headers": {"Range": "bytes=-8"}}),
        ("lone notebook", local(links["notebook"]), {}),
        ("git refs", local(links["git"]) + "/info/refs?service=git-upload-pack", {}),
        ("describe", f"/api/v1/bundles/{hid}", {"headers": AUTH}),
        ("links", f"/api/v1/bundles/{hid}/links", {"headers": AUTH}),
        ("hubs", f"/api/v1/bundles/{hid}/hubs", {"headers": AUTH}),
        ("api download", f"/api/v1/bundles/{hid}/download", {"headers": {**AUTH, "Range": "bytes=0-0"}}),
        ("blob", f"/api/v1/bundles/{hid}/returns/blobs", {"method": "POST", "headers": bearer, "json": {}}),
        (
            "return upload",
            f"/api/v1/bundles/{hid}/returns",
            {"method": "POST", "headers": bearer, "data": return_zip, "content_type": "application/zip"},
        ),
        ("returns", f"/api/v1/bundles/{hid}/returns", {"headers": AUTH}),
        ("return", f"/api/v1/bundles/{hid}/returns/{rid}", {"headers": AUTH}),
        ("return zip", f"/api/v1/bundles/{hid}/returns/{rid}/download", {"headers": AUTH}),
        ("return file", f"/api/v1/bundles/{hid}/returns/{rid}/files/outputs/r.csv", {"headers": AUTH}),
        ("return html", f"/api/v1/bundles/{hid}/returns/{rid}/notebook.html", {"headers": AUTH}),
        ("extend", f"/api/v1/bundles/{hid}", {"method": "PATCH", "headers": AUTH, "json": {"expires_in": 3600}}),
        ("delete", f"/api/v1/bundles/{hid}", {"method": "DELETE", "headers": AUTH}),
    ]
    reads = {}
    for name, path, kwargs in requests:
        storage.reads.clear()
        resp = client.open(path, method=kwargs.pop("method", "GET"), **kwargs)
        resp.get_data()  # a streamed body is read from storage as it is sent
        # direct uploads are off on a folder store: the blob request is refused (409), after the handle was read
        refused = (name, resp.status_code) == ("blob", 409)
        assert resp.status_code < 400 or refused, (name, resp.status_code, resp.get_data(as_text=True)[:300])
        reads[name] = storage.reads[state]
    # The git scope (files URL, lone notebook, git) may answer from the worker's one-second memory of the handle
    # (tests/unit/test_recent_handles.py): at most one read there.
    git_scoped = {"member", "member range", "lone notebook", "git refs"}
    assert {n: r for n, r in reads.items() if n not in git_scoped} == {n: 1 for n in reads if n not in git_scoped}
    assert all(reads[n] <= 1 for n in git_scoped), reads
