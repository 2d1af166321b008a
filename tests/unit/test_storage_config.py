"""Storage asked of its interface (capabilities) and configured from one place (nbpack/config.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbpack.config import load_config, s3_endpoint_from_env, s3_region_from_env
from nbpack.store.backends import LocalStorage, S3Storage, Storage, open_storage


def test_each_backend_says_whether_it_presigns_puts(tmp_path: Path) -> None:
    local = open_storage(str(tmp_path / "s"))
    s3 = open_storage("s3://bkt/p", endpoint_url="http://127.0.0.1:9", region="eu-west-1")
    assert isinstance(local, Storage) and isinstance(s3, Storage)
    assert local.supports_presigned_put is False and LocalStorage.supports_presigned_put is False
    assert s3.supports_presigned_put is True and S3Storage.supports_presigned_put is True
    assert local.presigned_put("a/b", 60) is None


def test_the_environment_is_read_in_config() -> None:
    assert s3_endpoint_from_env({"NBPACK_S3_ENDPOINT": "http://a", "AWS_ENDPOINT_URL": "http://b"}) == "http://a"
    assert s3_endpoint_from_env({"AWS_ENDPOINT_URL": "http://b"}) == "http://b"
    assert s3_endpoint_from_env({}) is None
    assert s3_region_from_env({"AWS_REGION": "r1", "AWS_DEFAULT_REGION": "r2"}) == "r1"
    assert s3_region_from_env({"AWS_DEFAULT_REGION": "r2"}) == "r2"
    assert s3_region_from_env({}) == "us-east-1"
    env = {"NBPACK_STORAGE": "s3://b/p", "NBPACK_SECRET_KEY": "x" * 20, "NBPACK_PUBLIC_URL": "https://h"}
    cfg = load_config({**env, "AWS_ENDPOINT_URL": "http://e", "AWS_DEFAULT_REGION": "eu-north-1"})
    assert (cfg.s3_endpoint, cfg.s3_region) == ("http://e", "eu-north-1")
    cfg = load_config({**env, "NBPACK_S3_ENDPOINT": "http://n", "AWS_ENDPOINT_URL": "http://e"})
    assert (cfg.s3_endpoint, cfg.s3_region) == ("http://n", "us-east-1")


def test_open_storage_without_arguments_takes_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBPACK_S3_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    s3 = open_storage("s3://bkt/p")
    assert isinstance(s3, S3Storage)
    assert s3.endpoint_url == "http://127.0.0.1:9"
    assert s3.client.meta.region_name == "eu-central-1"
    explicit = open_storage("s3://bkt/p", endpoint_url="http://127.0.0.1:8", region="ap-south-1")
    assert isinstance(explicit, S3Storage)
    assert (explicit.endpoint_url, explicit.client.meta.region_name) == ("http://127.0.0.1:8", "ap-south-1")


def test_a_pushed_bundle_s_zip_limits_grow_with_max_bundle_bytes(tmp_path: Path) -> None:
    from nbpack.bundle.archive import DEFAULT_LIMITS
    from tests.helpers import make_config

    # The defaults hold for the default size (a 10 GiB catalog was refused as an 8 GiB member even with a bigger
    # NBPACK_MAX_BUNDLE_BYTES: the bench's 10 GiB open_size run).
    assert make_config(tmp_path).bundle_limits == DEFAULT_LIMITS
    big = make_config(tmp_path, max_bundle_bytes=str(21 << 30)).bundle_limits
    assert big.max_member == 21 << 30 and big.max_total == 42 << 30
    assert (big.max_entries, big.max_ratio) == (DEFAULT_LIMITS.max_entries, DEFAULT_LIMITS.max_ratio)
