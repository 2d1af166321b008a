"""Members hashed as a zip's bytes arrive (``bundle.zipstream``): the digests equal a second pass over the file, and
only digests of the very bytes ``zipfile`` reads are handed back."""

from __future__ import annotations

import hashlib
import io
import os
import random
import zipfile

from nbpack.bundle.zipstream import StreamDigests


def _zip(members: dict[str, tuple[bytes, int]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, (data, method) in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data, compress_type=method)
    return out.getvalue()


def _fed(data: bytes, seed: int = 0) -> StreamDigests:
    """Fed in uneven pieces, as a request body arrives (a header may straddle two reads)."""
    rng, d, i = random.Random(seed), StreamDigests(), 0
    while i < len(data):
        n = rng.choice([1, 7, 29, 31, 4096, 1 << 20])
        d.feed(data[i : i + n])
        i += n
    return d


def test_stored_and_deflated_members_match_a_second_pass() -> None:
    members = {
        "nbpack-return.json": (b'{"id": "r-1"}', zipfile.ZIP_DEFLATED),
        "outputs/random.bin": (os.urandom(3 << 20), zipfile.ZIP_DEFLATED),
        "outputs/zeros.bin": (bytes(5 << 20), zipfile.ZIP_DEFLATED),  # inflates 1000:1, in bounded steps
        "outputs/stored.bin": (os.urandom(100_000), zipfile.ZIP_STORED),
        "outputs/empty.txt": (b"", zipfile.ZIP_STORED),
        "outputs/ünï.txt": (b"utf-8 name", zipfile.ZIP_DEFLATED),
    }
    data = _zip(members)
    for seed in range(3):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            got = _fed(data, seed).matching(zf)
        assert got == {name: hashlib.sha256(body).hexdigest() for name, (body, _) in members.items()}


def test_bytes_the_archive_does_not_read_are_not_vouched_for() -> None:
    data = _zip({"a.bin": (b"A" * 1000, zipfile.ZIP_DEFLATED), "b.bin": (b"B" * 1000, zipfile.ZIP_STORED)})
    # Something before the first record: offsets no longer line up, nothing is handed back (the file is hashed).
    prefixed = b"junk" + data
    with zipfile.ZipFile(io.BytesIO(prefixed)) as zf:
        assert _fed(prefixed).matching(zf) == {}
    # A central directory that names another CRC for b.bin than its local record's bytes: b.bin is not vouched for.
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo("b.bin")
    at = data.rindex(b"PK\x01\x02")  # b.bin's central record, the last
    cd = bytearray(data)
    crc_at = at + 16
    assert int.from_bytes(cd[crc_at : crc_at + 4], "little") == info.CRC
    cd[crc_at : crc_at + 4] = (info.CRC ^ 1).to_bytes(4, "little")
    with zipfile.ZipFile(io.BytesIO(bytes(cd))) as zf:
        assert set(_fed(bytes(cd)).matching(zf)) == {"a.bin"}
    # A member inflating past the size its header declares stops the pass.
    d = StreamDigests()
    bomb = bytearray(_zip({"z.bin": (bytes(1 << 20), zipfile.ZIP_DEFLATED)}))
    bomb[22:26] = (10).to_bytes(4, "little")  # local header's uncompressed size
    d.feed(bytes(bomb))
    assert d.found == {}


def test_the_archive_limits_stop_the_pass_before_memory_or_cpu_go() -> None:
    from nbpack.bundle.archive import Limits

    limits = Limits(max_entries=50, max_ratio=200.0, ratio_floor=1 << 20)
    # Many records: no more digests kept than the archive may hold entries (300,000 of them took a worker +112 MiB).
    many = _zip({f"e{i}": (b"", zipfile.ZIP_STORED) for i in range(500)})
    d = StreamDigests(limits)
    d.feed(many)
    assert len(d.found) == 50
    # A bomb: 64 MiB of zeros in ~64 KiB. The pass stops at the ratio the archive may have of what arrived.
    bomb = _zip({"zeros.bin": (bytes(64 << 20), zipfile.ZIP_DEFLATED)})
    d = StreamDigests(limits)
    d.feed(bomb)
    assert d.found == {} and d._inflated <= 200 * len(bomb) + (1 << 20) < 64 << 20  # the ratio, plus one step
    # A member declared larger than allowed is not followed at all.
    d = StreamDigests(Limits(max_member=1 << 10))
    d.feed(_zip({"big.bin": (os.urandom(4 << 10), zipfile.ZIP_STORED)}))
    assert d.found == {} and d._inflated == 0
