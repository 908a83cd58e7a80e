"""shiftlab.allocator: after keep_freed_memory(), a freed large tensor's pages are reused (no new page faults)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import resource, torch
from shiftlab.allocator import keep_freed_memory
applied = keep_freed_memory()
def touch():
    t = torch.empty(16 << 20)  # 64 MiB of float32, above glibc's largest mmap threshold (32 MiB)
    t.fill_(1.0)
    return float(t[-1])
touch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def probe(**env: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE], env={**os.environ, **env}, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_second_large_tensor_reuses_pages_only_when_kept() -> None:
    applied, faults = probe()
    default, default_faults = probe(SHIFTLAB_MALLOC="default")
    assert (applied, default) == ("True", "False")
    assert default_faults > 10_000  # 64 MiB / 4 KiB pages = 16,384 fresh pages
    assert faults < 1_000, faults
