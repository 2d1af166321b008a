"""Storage quotas: a tenant's bytes (its handles' zips and its returns), and a handle's returns by count and bytes.

A handle's returns are counted in its ledger (``quota/<hid>/returns.json``): one entry per return stored or being
uploaded, with its bytes and the uploads holding it. An upload checks the count and bytes and adds its entry in one
compare-and-swap (``store/ledger.py``: a PUT with If-Match on the tag of the copy it checked), so parallel uploads on
any number of replicas never pass a quota: of two uploads that checked the same state, only the first PUT lands and
the other checks again against the state that holds the first. An entry is written before the zip, so a return
being uploaded counts as soon as it can become visible, and never twice (its id is the key). A retry finds its entry
(and the manifest behind it, one HEAD: retries are rare) and is answered before any quota is checked. A failed
upload takes its entry out; a killed one leaves it, and the first check after PENDING_STALE confirms it against its
manifest or drops it. gc takes a deleted return out.

The ledger is also where a return meets a DELETE of its handle (issue 23): the delete replaces the ledger with a
tombstone (``bury``, itself a compare-and-swap) before it removes anything, so every reservation after it fails —
whatever copy of the handle the upload's worker held (``Capabilities``' return-scope memory) and whatever ledger copy
it kept (the If-Match fails on the tombstone's new tag, the re-read finds it). An upload that reserved just before the
tombstone may still write its zip and manifest after the delete swept them: those are unreachable (no
``handle.json``: every route refuses; the id is never reused) and gc removes them with the tombstone once it is older
than PENDING_STALE, the bound on a reservation's life this module already relies on. That replaces the HEAD of
``handle.json`` each upload made after its commit.

A tenant's bytes are empty marker objects whose names end in the size charged (``keys.usage_key``), so one listing
adds them up and a delete of the marker gives the bytes back; with a tenant quota configured the check and the charge
happen in one step under the tenant's create-only lock (``store/reservations.py``), a marker per return. Without a
tenant quota a return is charged in its ledger entry alone (``uncharged``: no marker of its own, one PUT less), and
the handle gets one marker ``ledger.0`` the first time (``counted`` in the ledger): ``tenant_usage`` reads the
ledgers those markers name and adds their uncharged entries, so a quota configured later counts every stored return.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbpack.config import Config
from nbpack.errors import Forbidden, NbpackError, NoConditionalWrites, TooLarge
from nbpack.store import ledger, reservations
from nbpack.store.backends import ObjectInfo, Storage
from nbpack.store.keys import (
    ledger_key,
    quota_lock_key,
    return_key,
    return_objects_prefixes,
    return_prefix,
    split_usage_key,
    usage_key,
    usage_prefix,
)

__all__ = [
    "PENDING_STALE",
    "Reservation",
    "TooManyReturns",
    "bury",
    "buried",
    "charge_tenant",
    "check_tenant",
    "forget_return",
    "release",
    "reserve_return",
    "return_objects",
    "tenant_usage",
]


# An upload reserves before it writes its zip (already received locally); one whose entry is this old and whose
# return never became visible died.
PENDING_STALE = 6 * 3600.0
# The usage marker naming a handle whose ledger holds returns charged there alone (no tenant quota configured).
LEDGER_MARK = "ledger"


class TooManyReturns(NbpackError):
    """A handle holds as many returns as the service allows (429: a later upload may fit after gc)."""

    code = "return_quota"
    http_status = 429


def tenant_usage(storage: Storage, tenant: str) -> int:
    """Bytes charged to a tenant: its handles' zip sizes and its returns' sizes (markers, and the uncharged entries
    of the ledgers a ``ledger.0`` marker names: one read per such handle)."""
    total = 0
    for info in storage.list(usage_prefix(tenant)):
        marker = split_usage_key(info.key)
        if marker is None:
            continue
        hid, what, size = marker
        total += size
        if what == LEDGER_MARK:
            doc, _ = ledger.read(storage, ledger_key(hid))
            if not doc.get("deleted"):
                total += sum(int(e["bytes"]) for e in doc.get("returns", {}).values() if e.get("uncharged"))
    return total


def check_tenant(storage: Storage, config: Config, tenant: str, adding: int) -> None:
    """413 when adding ``adding`` bytes would take the tenant over its quota."""
    quota = config.tenant_quota_bytes
    if quota and tenant_usage(storage, tenant) + adding > quota:
        raise TooLarge(f"this would take tenant {tenant} over its storage quota of {quota} bytes", code="tenant_quota")


def return_objects(storage: Storage, bid: str) -> list[ObjectInfo]:
    """Every object a handle's returns hold: their zips and manifests, and the blobs of direct uploads."""
    return [info for prefix in return_objects_prefixes(bid) for info in storage.list(prefix)]


@dataclass(frozen=True)
class Reservation:
    """One upload's place in the handle's ledger (``holder``) and its charge to the tenant (``charge``)."""

    bid: str
    rid: str
    holder: str
    charge: str | None  # its usage marker; None when charged in the ledger entry alone


def reserve_return(storage: Storage, config: Config, bid: str, tenant: str, rid: str, size: int) -> Reservation | None:
    """Check the handle's count and bytes and the tenant's bytes and reserve ``size`` bytes of return ``rid`` (one
    conditional write of the ledger; with a tenant quota, the tenant's charge too); None when the return is stored
    already, which is answered before any quota is checked (a retry is never refused for a full quota). 403
    ``token_revoked`` once the handle's delete buried the ledger (module docstring)."""
    holder, manifest = secrets.token_hex(6), return_key(bid, rid, "manifest.json")
    marked = bool(config.tenant_quota_bytes)  # a marker per return: the tenant's lock counts markers
    stored: dict[str, bool] = {}  # manifests looked up during this call (a retry, or a ledger entry gone stale)
    first = {"count": False}  # this write is the one that marks the handle's ledger as counted (ledger.0)

    def is_stored(r: str) -> bool:
        if r not in stored:
            stored[r] = storage.exists(return_key(bid, r, "manifest.json"))
        return stored[r]

    def change(doc: dict[str, Any]) -> tuple[bool, bool | str]:
        first["count"] = False
        if doc.get("deleted"):
            raise Forbidden("this link was revoked or its bundle has expired", code="token_revoked")
        if "returns" not in doc:
            doc["returns"] = _stored_returns(storage, bid)  # the handle's first ledger (returns from before ledgers)
        entries: dict[str, Any] = doc["returns"]
        entry = entries.get(rid)
        if entry is not None:
            if is_stored(rid):
                return False, ledger.SETTLED  # stored: answered on its manifest, whatever the ledger copy's age
            entry["holders"] = [*entry.get("holders", []), holder]  # another upload of it is running (or died)
            entry["at"] = time.time()
            return True, True
        _drop_stale(entries, is_stored)
        count, used = len(entries), sum(int(e["bytes"]) for e in entries.values())
        if count >= config.max_returns_per_bundle:
            raise TooManyReturns(f"bundle {bid} already holds {count} returns, the limit of this service")
        if used + size > config.max_return_bytes_per_bundle:
            raise TooLarge(
                f"bundle {bid} would hold more than {config.max_return_bytes_per_bundle} bytes of returns",
                code="return_bytes_quota",
            )
        entries[rid] = {"bytes": size, "at": time.time(), "holders": [holder]}
        if not marked:
            entries[rid]["uncharged"] = True
            if not doc.get("counted"):
                doc["counted"] = first["count"] = True
        return True, True

    try:
        if not ledger.update(storage, ledger_key(bid), change):
            return None
    except (TooManyReturns, TooLarge):
        if storage.exists(manifest):  # stored meanwhile, and the ledger was trimmed by gc: still a retry
            return None
        raise
    reservation = Reservation(bid, rid, holder, usage_key(tenant, bid, f"{rid}.{holder}", size) if marked else None)
    try:
        if marked:
            # Each upload's own charge, so a failed or losing upload of a return removes only what it added.
            charge_tenant(storage, config, tenant, bid, f"{rid}.{holder}", size)
        elif first["count"]:
            # Once per handle: tenant_usage then reads this ledger for its uncharged entries.
            storage.put_bytes(usage_key(tenant, bid, LEDGER_MARK, 0), b"")
    except BaseException:
        release(storage, reservation, uncount=first["count"])
        raise
    return reservation


def release(storage: Storage, reservation: Reservation, *, uncount: bool = False) -> None:
    """Give back what a failed upload reserved: its tenant charge, and its ledger entry unless the return got
    stored by another upload or another upload of it is still running (``uncount``: its ``ledger.0`` marker was
    not written, so the next upload writes it)."""
    if reservation.charge is not None:
        storage.delete(reservation.charge)
    stored = storage.exists(return_key(reservation.bid, reservation.rid, "manifest.json"))

    def change(doc: dict[str, Any]) -> tuple[None, bool]:
        entries = doc.get("returns", {})
        entry = entries.get(reservation.rid)
        if uncount:
            doc.pop("counted", None)
        if entry is None or reservation.holder not in entry.get("holders", []):
            return None, uncount
        entry["holders"].remove(reservation.holder)
        if not entry["holders"] and not stored:
            del entries[reservation.rid]
        return None, True

    ledger.update(storage, ledger_key(reservation.bid), change)


def bury(storage: Storage, bid: str, tenant: str) -> None:
    """Replace the handle's ledger with a tombstone (its DELETE, before anything else goes): every later
    reservation for it fails, on any replica (module docstring); gc removes the tombstone."""

    def change(doc: dict[str, Any]) -> tuple[None, bool]:
        doc.clear()
        doc.update(deleted=time.time(), tenant=tenant)
        return None, True

    try:
        ledger.update(storage, ledger_key(bid), change)
    except NoConditionalWrites:
        pass  # no reservation, so no return, can be made on this store: there is nothing to stop


def forget_return(storage: Storage, bid: str, rid: str) -> None:
    """Take a deleted return (gc) out of the handle's ledger: its count and bytes are free again."""

    def change(doc: dict[str, Any]) -> tuple[None, bool]:
        return None, not doc.get("deleted") and doc.get("returns", {}).pop(rid, None) is not None

    ledger.update(storage, ledger_key(bid), change)


def buried(storage: Storage, bid: str) -> tuple[str, float] | None:
    """(tenant, when) of a deleted handle's tombstone, else None (gc: sweep it once older than PENDING_STALE)."""
    doc, _ = ledger.read(storage, ledger_key(bid))
    return (str(doc.get("tenant")), float(doc["deleted"])) if doc.get("deleted") else None


def _stored_returns(storage: Storage, bid: str) -> dict[str, Any]:
    """Ledger entries of the returns stored before the handle had a ledger (one listing, once per handle)."""
    sizes: dict[str, int] = {}
    visible: set[str] = set()
    for info in storage.list(return_prefix(bid)):
        parts = info.key.split("/")
        if len(parts) == 4:
            sizes[parts[2]] = sizes.get(parts[2], 0) + info.size
            if parts[3] == "manifest.json":
                visible.add(parts[2])
    return {rid: {"bytes": sizes[rid], "at": time.time(), "holders": [], "stored": True} for rid in sorted(visible)}


def _drop_stale(entries: dict[str, Any], is_stored: Callable[[str], bool]) -> None:
    """Entries older than PENDING_STALE are confirmed once: kept (marked stored) if their manifest exists, else
    dropped (an upload killed before it finished: its reservation expires)."""
    cutoff = time.time() - PENDING_STALE
    for rid, entry in list(entries.items()):
        if not entry.get("stored") and float(entry.get("at", 0)) < cutoff:
            if is_stored(rid):
                entry["stored"] = True
            else:
                del entries[rid]


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
