"""Storage quotas: a tenant's bytes (its handles' zips and its returns), and a handle's returns by count and bytes.

Each check and its charge happen in one step under the scope's create-only lock (``store/reservations.py``), so
parallel creates and uploads on any number of replicas never pass a quota together.

Usage is kept as empty marker objects whose names end in the size charged (``keys.usage_key``), so one listing
adds it up and a delete of the marker gives the bytes back.
"""

from __future__ import annotations

from nbpack.config import Config
from nbpack.errors import NbpackError, TooLarge
from nbpack.store import reservations
from nbpack.store.backends import ObjectInfo, Storage
from nbpack.store.keys import is_return_manifest, quota_lock_key, return_objects_prefixes, usage_key, usage_prefix

__all__ = [
    "TooManyReturns",
    "charge_tenant",
    "check_returns",
    "check_tenant",
    "reserve_return",
    "return_objects",
    "tenant_usage",
]


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


def check_returns(storage: Storage, config: Config, bid: str, adding: int, rid: str) -> bool:
    """Per-handle count and bytes of return ``rid`` about to be stored: the stored returns and the live
    reservations together (a return being uploaded counts once, by its reservation, never twice); raises before
    anything is stored; False (and nothing checked) when ``rid`` is stored already. Call under the handle's quota lock
    (``reserve_return``)."""
    held = reservations.pending(storage, bid)
    pending_ids = {r.rid for r in held} - {rid}
    used = sum(r.size for r in held if r.rid != rid)
    stored_ids: set[str] = set()
    for info in return_objects(storage, bid):
        parts = info.key.split("/")
        if parts[0] == "returns" and len(parts) == 4 and parts[2] in pending_ids:
            continue  # counted by its reservation
        used += info.size
        if is_return_manifest(bid, info.key):
            stored_ids.add(parts[-2])
    if rid in stored_ids:
        return False  # a retry of a stored return is answered, never refused for a full quota
    count = len((stored_ids | pending_ids) - {rid})
    if count >= config.max_returns_per_bundle:
        raise TooManyReturns(f"bundle {bid} already holds {count} returns, the limit of this service")
    if used + adding > config.max_return_bytes_per_bundle:
        raise TooLarge(
            f"bundle {bid} would hold more than {config.max_return_bytes_per_bundle} bytes of returns",
            code="return_bytes_quota",
        )
    return True


def reserve_return(storage: Storage, config: Config, bid: str, tenant: str, rid: str, size: int) -> str | None:
    """Check the handle's count and bytes and the tenant's bytes and reserve ``size`` bytes of return ``rid``, each
    scope under its lock, so parallel uploads on any replica never pass a quota; the tenant is charged now, before
    the data is written. The reservation's key (delete it once the return is stored, or on failure); None when the
    return is stored already (one listing answers that too: no HEAD of its manifest)."""
    with reservations.locked(storage, quota_lock_key(f"handle/{bid}")):
        if not check_returns(storage, config, bid, size, rid):
            return None
        charge_tenant(storage, config, tenant, bid, rid, size)
        return reservations.reserve(storage, bid, rid, size)


def charge_tenant(storage: Storage, config: Config, tenant: str, hid: str, what: str, size: int) -> str:
    """Check the tenant's quota and charge ``size`` bytes of ``what`` (``bundle`` or a return id) of handle ``hid``
    in one step under the tenant's lock (413 when it would not fit); the usage marker's key."""
    key = usage_key(tenant, hid, what, size)
    if not config.tenant_quota_bytes:
        storage.put_bytes(key, b"")
        return key
    with reservations.locked(storage, quota_lock_key(f"tenant/{tenant}")):
        check_tenant(storage, config, tenant, size)
        storage.put_bytes(key, b"")
    return key
