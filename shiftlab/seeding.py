"""Derived seeds: (seed, task key, batch index, ...) -> an independent ``torch.Generator``.

No library code touches the global RNG; every random draw takes an explicit generator.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import torch

DEFAULT_SEED = 0


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed from a base seed and any parts (stable across runs and machines)."""
    text = "\x1f".join([str(int(seed)), *(str(p) for p in parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") & ((1 << 63) - 1)


def make_generator(seed: int, *parts: object, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded by ``derive_seed(seed, *parts)``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(seed, *parts))
    return gen


@contextlib.contextmanager
def isolated_global_rng(seed: int) -> Iterator[None]:
    """Run a block with the global CPU RNG seeded to ``seed``, restoring the caller's RNG after.

    For code that can only draw from the global RNG (module initialisers, dropout): the
    caller's random state is untouched, as the design requires.
    """
    with torch.random.fork_rng(devices=[]):
        torch.random.manual_seed(seed)
        yield
