"""shiftlab.core.allocator: with keep_freed_memory(), large tensors come from the heap and freed memory stays there."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# glibc's mallinfo2(): hblkhd = bytes in mmap'ed blocks, fordblks = free bytes kept in the heap
PROBE = """
import ctypes, torch
from shiftlab.core.allocator import keep_freed_memory
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                       "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
applied = keep_freed_memory()
t = torch.ones(16 << 20)  # 64 MiB of float32, above glibc's largest mmap threshold (32 MiB)
mapped = libc.mallinfo2().hblkhd
del t
print(applied, mapped >> 20, libc.mallinfo2().fordblks >> 20)
"""


def probe(**env: str) -> tuple[str, int, int]:
    out = subprocess.run([sys.executable, "-c", PROBE], env={**os.environ, **env}, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0], int(out[1]), int(out[2])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_large_tensors_come_from_the_heap_and_stay_there() -> None:
    applied, mapped_mib, free_mib = probe()
    default, default_mapped_mib, default_free_mib = probe(SHIFTLAB_MALLOC="default")
    assert (applied, default) == ("True", "False")
    assert default_mapped_mib >= 64 and default_free_mib < 64  # glibc: its own mmap, unmapped on free
    assert mapped_mib < 64 and free_mib >= 64  # kept: from the heap, and still there for the next batch
