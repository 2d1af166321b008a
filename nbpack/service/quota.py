"""Storage quotas: a tenant's bytes (its handles' zips and its returns), and a handle's returns by count and bytes.

Usage is kept as empty marker objects whose names end in the size charged (``keys.usage_key``), so one listing
adds it up and a delete of the marker gives the bytes back.
"""

from __future__ import annotations

from nbpack.config import Config
from nbpack.errors import NbpackError, TooLarge
from nbpack.store.backends import ObjectInfo, Storage
from nbpack.store.keys import is_return_manifest, return_objects_prefixes, usage_prefix

__all__ = ["TooManyReturns", "check_returns", "check_tenant", "return_objects", "tenant_usage"]


class TooManyReturns(NbpackError):
    """A handle holds as many returns as the service allows (429: a later upload may fit after gc)."""

    code = "return_quota"
    http_status = 429


def tenant_usage(storage: Storage, tenant: str) -> int:
    """Bytes charged to a tenant: its handles' zip sizes and its returns' sizes."""
    total = 0
    for info in storage.list(usage_prefix(tenant)):
        tail = info.key.rsplit(".", 1)[-1]
        total += int(tail) if tail.isdigit() else 0
    return total


def check_tenant(storage: Storage, config: Config, tenant: str, adding: int) -> None:
    """413 when adding ``adding`` bytes would take the tenant over its quota."""
    quota = config.tenant_quota_bytes
    if quota and tenant_usage(storage, tenant) + adding > quota:
        raise TooLarge(f"this would take tenant {tenant} over its storage quota of {quota} bytes", code="tenant_quota")


def return_objects(storage: Storage, bid: str) -> list[ObjectInfo]:
    """Every object a handle's returns hold: their zips and manifests, and the blobs of direct uploads."""
    return [info for prefix in return_objects_prefixes(bid) for info in storage.list(prefix)]


def check_returns(
    storage: Storage, config: Config, bid: str, tenant: str, adding: int, held: list[ObjectInfo] | None = None
) -> None:
    """Per-handle count and bytes (over ``held``, listed when not given), then the tenant's; raises before
    anything is stored."""
    count, used = 0, 0
    for info in return_objects(storage, bid) if held is None else held:
        used += info.size
        count += is_return_manifest(bid, info.key)
    if count >= config.max_returns_per_bundle:
        raise TooManyReturns(f"bundle {bid} already holds {count} returns, the limit of this service")
    if used + adding > config.max_return_bytes_per_bundle:
        raise TooLarge(
            f"bundle {bid} would hold more than {config.max_return_bytes_per_bundle} bytes of returns",
            code="return_bytes_quota",
        )
    check_tenant(storage, config, tenant, adding)
