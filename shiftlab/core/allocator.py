"""Process-wide tuning of glibc malloc for large CPU tensors (called by entry points only).

PyTorch's CPU allocator takes every tensor from malloc. glibc serves blocks above its mmap threshold
(dynamic, at most 32 MiB) with a fresh ``mmap`` and unmaps them on free, and gives the top of the heap
back to the OS beyond ``M_TRIM_THRESHOLD``; so a batch of 64 RGB images at 224 px (38 MB of float32)
is new memory every time, and the first write to each of its pages is a page fault. On this project's
2-core machine that made ``x + 1`` on such a batch 4.6× slower than the same add into a reused buffer,
and it was the largest single cost of several 224-px corruptions and of the attacks' activations
(measured in ``notes/corruptions.md``, session 3). PyTorch's own CPU tuning guides recommend jemalloc
or tcmalloc for the same reason; this module gets most of the effect without a preload: large blocks
come from the heap (``M_MMAP_MAX = 0``), freed memory stays for reuse (``M_TRIM_THRESHOLD``), and the
heap grows in steps of 64 MiB (``M_TOP_PAD``).

Reuse is best effort: torch allocates with ``posix_memalign``, which asks glibc for a little more than
the block, so a freed block with a small live allocation right after it cannot serve the next request
of its own size, which then comes from fresh heap (and faults, as without this module). In a loop of
``(x + 1).clamp_(0, 1)`` on 38 MB batches, 4 of 7 processes ran fault-free after warm-up and the rest
faulted on some iterations (never more than glibc's default), and the peak resident memory was 804 MB
against 621 MB by default; it does not grow without bound (flat over 60 iterations).

The price is that resident memory stays at the peak of the process until it exits. The CLI
(``shiftlab.cli.main``), the benchmarks and the test session call ``keep_freed_memory()``; a library
import never does. ``SHIFTLAB_MALLOC=default`` leaves malloc alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# glibc <malloc.h>
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4

TRIM_BYTES = 2**31 - 1  # mallopt takes an int: keep up to 2 GiB of free heap top
TOP_PAD_BYTES = 64 << 20


def keep_freed_memory() -> bool:
    """Make glibc keep and reuse freed memory (see the module docstring); True when applied.

    A no-op (False) off Linux/glibc, or when ``SHIFTLAB_MALLOC=default``.
    """
    if os.environ.get("SHIFTLAB_MALLOC", "") == "default" or not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl's mallopt ignores these)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in
               ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, TRIM_BYTES), (M_TOP_PAD, TOP_PAD_BYTES)))
