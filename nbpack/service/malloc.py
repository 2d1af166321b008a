"""The worker's malloc arenas, bounded: big uploads' buffers would otherwise stay resident after each request.

glibc gives every thread that allocates its own arena, up to 8 per core. A service worker runs 8 request threads and
8 part senders (``store/s3_multipart``), each turning over ~1 MiB buffers (socket reads, gunicorn's body buffer, the
inflated steps of the member check, botocore's hashing reads). Above glibc's dynamic mmap threshold those come from
the thread's arena, and a freed buffer below the arena's top stays resident: at 1 GiB sent as 20 concurrent returns
the worker grew +83 MiB, most of it still held after the requests ended (bench/README.md, "Worker memory for big
returns"). With two arenas the same run grew +38 MiB. The threads take turns on the GIL anyway, so they hardly
ever contend for an arena's lock.

An operator's ``MALLOC_ARENA_MAX`` (which glibc reads itself) is left as it is; elsewhere than glibc nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

__all__ = ["ARENAS", "bound_arenas"]

log = logging.getLogger("nbpack.service.malloc")

ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def bound_arenas(arenas: int = ARENAS) -> bool:
    """Limit this process to ``arenas`` malloc arenas (glibc only; before threads start is best): True if set."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): its allocator is left alone
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(_M_ARENA_MAX, arenas) != 1:
        log.warning("mallopt(M_ARENA_MAX) refused; malloc arenas not bounded")
        return False
    return True
