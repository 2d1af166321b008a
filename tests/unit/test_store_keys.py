"""Storage keys: a usage marker's key is read back into what wrote it."""

from __future__ import annotations

from nbpack.store.keys import split_usage_key, usage_key


def test_usage_key_round_trips() -> None:
    hid = "h-" + "0" * 24
    for what, size in [("bundle", 0), ("r-" + "a" * 24 + ".w1", 12345678901), ("ledger", 0)]:
        assert split_usage_key(usage_key("t1", hid, what, size)) == (hid, what, size)


def test_other_keys_are_not_usage_markers() -> None:
    assert split_usage_key("tenants/t1/usage/h-1/bundle") is None  # no size
    assert split_usage_key("tenants/t1/usage/h-1/bundle.-5") is None
    assert split_usage_key("tenants/t1/index/h-1/bundle.5") is None
    assert split_usage_key("handles/h-1/usage.5") is None
