"""One pass per create (issue 22): each member hashed once as it is written, no deep check of the service's own zip,
no read-back of the ``handle.json`` just written; a pushed zip is checked deep and keyed as it is copied.

Hashing is counted by wrapping ``hashlib.sha256`` for the create's duration (every sha256 in the process counts, so
the bound is an upper one); the record keys the writer computes are checked against keys read back from the zip.
"""

from __future__ import annotations

import hashlib
import io
import random
import zipfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from nbpack.bundle.build import BuildSpec, CatalogInput, build_bundle, with_returns
from nbpack.service.core import Service
from nbpack.service.handles import CreateRequest
from nbpack.store.keys import content_key
from nbpack.store.local import LocalStorage
from nbpack.store.zipparts import segment_key, split_zip
from tests.helpers import make_config
from tests.unit.test_service_reads import CountingStorage  # one counting wrapper for both

MB = 1 << 20


class Hashed:
    """Bytes fed to each sha256 made while it is installed, per hash."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sizes: list[int] = []
        real = hashlib.sha256
        sizes = self.sizes

        class Counting:
            def __init__(self, data: bytes = b"", **kwargs: Any) -> None:
                self._h = real(**kwargs)
                self._i = len(sizes)
                sizes.append(0)
                self.update(data)

            def update(self, data: Any) -> None:
                sizes[self._i] += memoryview(data).nbytes
                self._h.update(data)

            def __getattr__(self, name: str) -> Any:
                return getattr(self._h, name)

        monkeypatch.setattr(hashlib, "sha256", Counting)

    @property
    def bytes(self) -> int:
        return sum(self.sizes)


def _spec() -> BuildSpec:
    # Random bytes (seeded: two builds make the same catalog): Parquet cannot shrink them.
    rng = random.Random(22)
    rows = pa.table({"id": pa.array(range(3000), pa.int64()), "blob": [rng.randbytes(1000) for _ in range(3000)]})
    small = pa.table({"id": [2**53 + 1, -1], "name": ["é, ✓", "line\nbreak"], "x": [float("nan"), None]})
    return BuildSpec(title="Once", catalogs=[CatalogInput("big", rows), CatalogInput("small", small)])


@pytest.fixture
def svc(tmp_path: Path) -> tuple[Service, CountingStorage]:
    cfg = make_config(tmp_path)
    storage = CountingStorage(LocalStorage(tmp_path / "store"))
    return Service(cfg, storage), storage


def test_a_create_hashes_each_member_once_and_reads_nothing_back(svc, monkeypatch) -> None:
    service, storage = svc
    spec = _spec()
    hashed = Hashed(monkeypatch)
    stored = service.handles.create(spec, CreateRequest("http://localhost"))
    handle = service.handles.load(stored.id)
    assert handle.size > 2.5 * MB
    # The big catalog is hashed whole once, as it is written (before issue 22: three times, by the build, a deep
    # check of the service's own zip and the split into parts); its lazy-read block digests hash it once more, in
    # the same read. The rest is small change: the small members, tokens, record keys' headers.
    whole = [n for n in hashed.sizes if n > 2 * MB]
    assert len(whole) == 1, hashed.sizes
    assert hashed.bytes < 2.2 * handle.size, (hashed.bytes, handle.size)
    assert storage.reads[f"handles/{stored.id}/handle.json"] == 1  # the load above, none during the create
    # The parts are the zip, and each content part is keyed as if read back from the zip.
    zip_bytes = b"".join(service.members.zip_chunks(handle))
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
        assert zf.testzip() is None
    keys = [key for key, _ in handle.parts if key.startswith("content/")]
    assert len(keys) == len(handle.parts) - 2  # all but nbpack.json's record and the central directory


def test_the_writers_record_keys_are_the_keys_read_back(tmp_path: Path) -> None:
    keys: dict[str, str] = {}
    path = tmp_path / "b.zip"
    build_bundle(_spec(), path, record_keys=keys)
    segments = [s for s in split_zip(path) if s.name not in (None, "nbpack.json")]
    assert keys == {s.name: segment_key(path, s) for s in segments}
    # A copy with the returns section (a pushed zip) keys its records the same way: same members, same keys.
    copied: dict[str, str] = {}
    with_returns(
        path,
        tmp_path / "c.zip",
        {"endpoint": "https://x.org/r", "token": "t", "expires": "2030-01-01T00:00:00Z"},
        record_keys=copied,
    )
    assert copied == keys
    # A key names the record's exact bytes: one byte changed in a record's data changes its key.
    big = next(s for s in segments if s.name == "catalogs/big.parquet")
    data = bytearray(path.read_bytes())
    data[big.offset + big.size - 10] ^= 1
    (tmp_path / "d.zip").write_bytes(bytes(data))
    assert segment_key(tmp_path / "d.zip", big) != keys[big.name]
    assert content_key(keys[big.name])  # a valid content key


def test_a_pushed_zip_is_checked_deep_and_shares_the_built_content(svc, tmp_path, monkeypatch) -> None:
    service, _ = svc
    path = tmp_path / "b.zip"
    build_bundle(_spec(), path)
    built = service.handles.create(_spec(), CreateRequest("http://localhost"))
    pushed = service.handles.store(path, CreateRequest("http://localhost"))
    a, b = service.handles.load(built.id), service.handles.load(pushed.id)
    # Same catalogs, same writer: the pushed copy reuses the built bundle's content parts.
    shared = {k for k, _ in a.parts} & {k for k, _ in b.parts}
    assert any(n > MB for k, n in b.parts if k in shared)
    # A pushed zip whose member lies about its content is refused (the deep check runs for pushed zips).
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "catalogs/small.parquet":
                data = data[:-9] + bytes([data[-9] ^ 1]) + data[-8:]
            dst.writestr(info, data)
    from nbpack.errors import InvalidBundle

    with pytest.raises(InvalidBundle, match="sha256"):
        service.handles.store(bad, CreateRequest("http://localhost"))
