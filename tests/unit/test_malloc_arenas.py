"""The service bounds its malloc arenas (nbpack/service/malloc.py): threads then share two instead of one each."""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys

import pytest

# In a fresh process: optionally bound the arenas, start 12 threads that each allocate, count glibc's arenas
# (malloc_info's <heap> elements) while they are all alive.
_COUNT = """
import ctypes, ctypes.util, os, sys, tempfile, threading
from nbpack.service.malloc import bound_arenas
if sys.argv[1] == "bound":
    assert bound_arenas()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
started, done = threading.Barrier(13), threading.Event()
def work():
    keep = [bytearray(64 << 10) for _ in range(16)]  # below the mmap threshold: from this thread's arena
    started.wait()
    done.wait()
threads = [threading.Thread(target=work) for _ in range(12)]
for t in threads:
    t.start()
started.wait()
path = os.path.join(tempfile.mkdtemp(), "info.xml")
fp = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, fp)
libc.fclose(fp)
done.set()
for t in threads:
    t.join()
print(open(path).read().count("<heap nr="))
"""


def _arenas(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run([sys.executable, "-c", _COUNT, mode], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux") or not ctypes.util.find_library("c"), reason="glibc only")
def test_threads_share_two_arenas_once_bounded() -> None:
    # Unbounded, glibc gives the threads arenas of their own (up to 8 per core): what kept big uploads' buffers.
    assert _arenas("free") > 2
    assert _arenas("bound") <= 2


def test_an_operators_malloc_arena_max_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from nbpack.service.malloc import bound_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert bound_arenas() is False
