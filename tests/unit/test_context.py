"""nbpack/service/context.py: uploads spool to disk under the cache folder with a hard byte limit; ranges stream."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest

from nbpack.errors import TooLarge
from nbpack.service.context import Context
from nbpack.store.backends import open_storage
from tests.helpers import make_config


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    config = make_config(tmp_path, storage=f"memory://context-{uuid.uuid4().hex}")
    return Context(config, open_storage(config.storage_url), tmp_path / "c")


def test_an_upload_within_the_limit_is_spooled_in_the_cache_tmp_folder(ctx: Context) -> None:
    data = bytes(range(256)) * 10
    path = ctx.receive(io.BytesIO(data), limit=len(data))
    assert path.parent == ctx.cache_dir / "tmp" and path.read_bytes() == data


def test_one_byte_over_the_limit_is_refused_and_nothing_is_left(ctx: Context) -> None:
    with pytest.raises(TooLarge, match="larger than the limit of 9 bytes"):
        ctx.receive(io.BytesIO(b"x" * 10), limit=9)
    assert list(ctx.tmp_dir().iterdir()) == []


def test_read_range_is_inclusive_of_both_ends(ctx: Context) -> None:
    ctx.storage.put_bytes("k", b"0123456789")
    assert b"".join(ctx.read_range("k", 2, 5)) == b"2345"
    assert b"".join(ctx.read_range("k", 9, 9)) == b"9"
