"""Derived seeds: (seed, task key, batch index, ...) -> an independent ``torch.Generator``.

No library code touches the global RNG; every random draw takes an explicit generator derived from
the seed and what the draw is for (design contract 6).
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


# ---------------------------------------------------------------------------------------------
# per-image random streams (design contract 6)

MASK32 = 0xFFFFFFFF


def _mul32(h: torch.Tensor, c: int) -> torch.Tensor:
    """(h · c) mod 2³² for int64 tensors holding 32-bit values, without int64 overflow."""
    lo, hi = c & 0xFFFF, c >> 16
    return (h * lo + (((h * hi) & 0xFFFF) << 16)) & MASK32


def fmix32(h: torch.Tensor) -> torch.Tensor:
    """MurmurHash3's 32-bit finaliser (Appleby 2011), element-wise on int64 tensors of 32-bit values."""
    h = h ^ (h >> 16)
    h = _mul32(h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = _mul32(h, 0xC2B2AE35)
    return h ^ (h >> 16)


def _tag(purpose: object) -> int:
    return derive_seed(0, "purpose", purpose) & MASK32


class ImageStreams:
    """Random numbers keyed by image: what image i draws depends only on its key and the purpose of
    the draw (e.g. ``("restart", 2)``), never on which other images share its batch.

    Keys come from (seed, task identity, image index) (:meth:`for_images`); ``subset`` and ``derive``
    follow images through an attack that drops broken points or replicates images per target class.
    The numbers come from a counter-based hash (MurmurHash3's finaliser over key, purpose and element
    index), so they are identical on every device and for any batch composition.

    Args:
        keys: one 32-bit key per image (int64 tensor, N).
    """

    def __init__(self, keys: torch.Tensor) -> None:
        self.keys = keys.to(torch.int64) & MASK32

    @classmethod
    def for_images(cls, seed: int, key: object, indices: torch.Tensor) -> ImageStreams:
        """Streams of the images at ``indices`` (their position in the dataset) for task ``key``."""
        base = derive_seed(seed, "images", key)
        idx = indices.to(torch.int64)
        return cls(fmix32(fmix32((idx & MASK32) ^ (base & MASK32)) ^ ((base >> 32) & MASK32) ^ (idx >> 32)))

    @classmethod
    def from_generator(cls, generator: torch.Generator, n: int) -> ImageStreams:
        """Streams for ``n`` images keyed by draws of a generator (for callers without image indices)."""
        keys = torch.randint(0, 2**31, (n,), generator=generator, device=generator.device)
        return cls(keys.cpu())

    def __len__(self) -> int:
        return int(self.keys.numel())

    def subset(self, index: torch.Tensor) -> ImageStreams:
        """The streams of some images (a boolean mask or indices, possibly repeated)."""
        return ImageStreams(self.keys[index.to(self.keys.device)])

    def derive(self, tag: object | torch.Tensor) -> ImageStreams:
        """New independent streams per image, keyed additionally by ``tag`` (one value, or one per image)."""
        extra = tag.to(torch.int64).cpu() & MASK32 if isinstance(tag, torch.Tensor) else torch.tensor(_tag(tag))
        return ImageStreams(fmix32(self.keys ^ fmix32(extra + 0x9E3779B9)))

    def bits(self, purpose: object, shape: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
        """Uniform 32-bit integers (int64 tensor of shape N × ``shape``) for one purpose."""
        count = 1
        for d in shape:
            count *= d
        keys = fmix32(self.keys ^ _tag(purpose)).to(device)
        element = torch.arange(count, device=device, dtype=torch.int64)
        h = fmix32(keys.view(-1, 1) ^ fmix32((element * 0x9E3779B9 + 0x7F4A7C15) & MASK32).view(1, -1))
        return fmix32(h ^ (keys.view(-1, 1) >> 7)).view(len(self), *shape)

    def rand(self, purpose: object, shape: tuple[int, ...], device: torch.device | str = "cpu",
             dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """U[0, 1) numbers (24-bit resolution, exact in float32), N × ``shape``."""
        return ((self.bits(purpose, shape, device) >> 8).to(torch.float32) * 2.0**-24).to(dtype)

    def randn(self, purpose: object, shape: tuple[int, ...], device: torch.device | str = "cpu",
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Standard normal numbers, N × ``shape`` (Box–Muller on two uniforms per value)."""
        u = ((self.bits(purpose, (2, *shape), device) >> 8).to(torch.float32) + 0.5) * 2.0**-24
        z = torch.sqrt(-2.0 * torch.log(u[:, 0])) * torch.cos(2.0 * torch.pi * u[:, 1])
        return z.to(dtype)

    def randint(self, purpose: object, high: int | torch.Tensor, shape: tuple[int, ...] = (),
                device: torch.device | str = "cpu") -> torch.Tensor:
        """Integers in [0, high) (``high`` one value or one per image), N × ``shape``."""
        bits = self.bits(purpose, shape, device)
        top = high.to(device).view(-1, *([1] * len(shape))) if isinstance(high, torch.Tensor) else high
        return (bits * torch.as_tensor(top, device=device, dtype=torch.int64).clamp_min(1)) >> 32
