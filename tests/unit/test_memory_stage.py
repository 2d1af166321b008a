"""Small uploads held in memory (``store.staging.MemoryStage``): only when announced and within the process budget,
never past their announced length, the budget given back however they end; and small S3 PUT bodies sent without
``Expect: 100-continue`` (``store.s3_client``)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

from nbpack.errors import TooLarge
from nbpack.store import s3_client, staging
from nbpack.store.api import PART_SIZE
from nbpack.store.memory import MemoryStorage

KEY = "returns/h-1/r-1/return.zip"


@pytest.fixture
def budget(monkeypatch: pytest.MonkeyPatch) -> staging._Budget:
    fresh = staging._Budget(staging.MEMORY_BUDGET)
    monkeypatch.setattr(staging, "_budget", fresh)
    return fresh


def test_an_announced_small_body_is_checked_and_stored_from_memory(tmp_path: Path, budget: staging._Budget) -> None:
    storage, body = MemoryStorage(), os.urandom(50_000)
    stage = staging.begin(storage, KEY, tmp_path, announced=len(body))
    assert isinstance(stage, staging.MemoryStage) and budget.held == len(body)
    seen: list[bytes] = []
    staging.fill(stage, io.BytesIO(body), limit=1 << 20, observe=seen.append)
    assert b"".join(seen) == body and stage.size == len(body)
    assert stage.local().read() == body and list(tmp_path.iterdir()) == []  # no spool file
    stage.commit(KEY)
    stage.close()
    assert storage.read_bytes(KEY) == body and budget.held == 0


def test_a_body_longer_than_announced_is_refused_and_keeps_nothing(tmp_path: Path, budget: staging._Budget) -> None:
    stage = staging.begin(MemoryStorage(), KEY, tmp_path, announced=10)
    with pytest.raises(TooLarge, match="announced 10 bytes"):
        staging.fill(stage, io.BytesIO(b"x" * 11), limit=100)
    assert budget.held == 0


def test_a_body_over_one_chunk_is_charged_twice_for_its_join(tmp_path: Path, budget: staging._Budget) -> None:
    body = os.urandom(3 << 20)
    stage = staging.begin(MemoryStorage(), KEY, tmp_path, announced=len(body))
    assert budget.held == 2 * len(body)
    staging.fill(stage, io.BytesIO(body), limit=len(body))
    assert stage.local().read() == body
    stage.close()
    assert budget.held == 0


def test_unannounced_big_or_over_budget_bodies_are_spooled_to_disk(tmp_path: Path, budget: staging._Budget) -> None:
    storage = MemoryStorage()
    assert isinstance(staging.begin(storage, KEY, tmp_path), staging.SpoolStage)  # chunked: no length
    assert isinstance(staging.begin(storage, KEY, tmp_path, PART_SIZE + 1), staging.SpoolStage)
    budget.held = staging.MEMORY_BUDGET - 100  # the other threads hold the rest
    spooled = staging.begin(storage, KEY, tmp_path, announced=101)
    assert isinstance(spooled, staging.SpoolStage)  # never refused for memory: it goes to disk as before
    staging.fill(spooled, io.BytesIO(b"y" * 101), limit=1000)
    assert Path(spooled.local()).read_bytes() == b"y" * 101
    spooled.close()
    assert isinstance(staging.begin(storage, KEY, tmp_path, announced=100), staging.MemoryStage)


class _Raw:
    def stream(self) -> list[bytes]:
        return [b""]


def _sent_headers(body: Any) -> dict[str, str]:
    """The headers the service's S3 client sends for a PUT of ``body`` (answered in-process, nothing on the wire)."""
    from botocore.awsrequest import AWSResponse

    client = s3_client.make("http://127.0.0.1:9", "us-east-1")
    sent: dict[str, str] = {}

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.update({k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})
        return AWSResponse(request.url, 200, {"ETag": '"e"'}, _Raw())

    client.meta.events.register("before-send.s3", answer)
    client.put_object(Bucket="b", Key="k", Body=body)
    return sent


def test_small_put_bodies_go_without_expect_and_parts_keep_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    assert "Expect" not in _sent_headers(b"{}")
    assert "Expect" not in _sent_headers(io.BytesIO(b"x" * 50_000))
    assert _sent_headers(io.BytesIO(b"x" * PART_SIZE)).get("Expect") == "100-continue"
