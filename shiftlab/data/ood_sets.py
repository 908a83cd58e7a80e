"""Synthetic out-of-distribution image sets, generated and seeded, of any size and channel count.

Following Hendrycks, Mazeika & Dietterich 2019 ("Deep Anomaly Detection with Outlier Exposure",
arXiv:1812.04606, Section 4.2):

* ``uniform-noise``: i.i.d. U[0, 1] pixels.
* ``gaussian-noise``: i.i.d. N(0.5, 1) pixels clipped to [0, 1].
* ``blobs``: amorphous shapes with definite edges: Bernoulli(0.7) pixels, Gaussian-blurred
  (sigma = 1 px), values below 0.75 set to 0.

Options: ``DatasetRequest.image_size`` (default 28) and ``extra`` keys ``channels`` (default 1) and
``n`` (images per split, default 10,000). Images are generated lazily in chunks of 256, each from its
own generator seeded by (dataset, split, request seed, chunk index), so any image is the same whether
read alone or in a batch, and a 224 px set never sits in memory. Labels are all 0 (no classes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from shiftlab.core.errors import UserError
from shiftlab.core.seeding import make_generator
from shiftlab.data.base import DATASETS, DatasetInfo, DatasetMeta, DatasetRequest, ImageDataset

CHUNK = 256
DEFAULT_SIZE = 10_000
OE_CITATION = "Hendrycks, Mazeika & Dietterich 2019, arXiv:1812.04606"

ChunkFn = Callable[[tuple[int, int, int, int], torch.Generator], torch.Tensor]


def uniform_noise_images(shape: tuple[int, int, int, int], generator: torch.Generator) -> torch.Tensor:
    """U[0, 1] pixels."""
    return torch.rand(shape, generator=generator)


def gaussian_noise_images(shape: tuple[int, int, int, int], generator: torch.Generator) -> torch.Tensor:
    """N(0.5, 1) pixels clipped to [0, 1]."""
    return (0.5 + torch.randn(shape, generator=generator)).clamp(0.0, 1.0)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (kernel radius ceil(3 sigma), reflect padding), per channel."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    n, c, h, w = x.shape
    y = x.reshape(n * c, 1, h, w)
    pad_h, pad_w = min(radius, h - 1), min(radius, w - 1)
    y = F.pad(y, (pad_w, pad_w, pad_h, pad_h), mode="reflect") if pad_h > 0 and pad_w > 0 else y
    kh, kw = k[radius - pad_h : radius + pad_h + 1], k[radius - pad_w : radius + pad_w + 1]
    y = F.conv2d(y, (kh / kh.sum()).view(1, 1, -1, 1))
    y = F.conv2d(y, (kw / kw.sum()).view(1, 1, 1, -1))
    return y.reshape(n, c, h, w)


def blob_images(shape: tuple[int, int, int, int], generator: torch.Generator) -> torch.Tensor:
    """Bernoulli(0.7) pixels, blurred with sigma = 1, values < 0.75 zeroed (Outlier Exposure's blobs)."""
    x = torch.bernoulli(torch.full(shape, 0.7), generator=generator)
    x = gaussian_blur(x, sigma=1.0)
    return torch.where(x < 0.75, torch.zeros_like(x), x).clamp(0.0, 1.0)


class GeneratedImageDataset(ImageDataset):
    """Images made on demand, chunk by chunk, each chunk from its own derived generator."""

    def __init__(self, name: str, make: ChunkFn, n: int, channels: int, size: int, seed_parts: tuple[object, ...]) -> None:
        self.make = make
        self.n, self.channels, self.size = n, channels, size
        self.seed_parts = seed_parts
        self._labels = torch.zeros(n, dtype=torch.long)
        mean = tuple(0.5 for _ in range(channels))
        self.info = DatasetInfo(name, 1, ("ood",), channels, (size, size), mean, tuple(0.25 for _ in range(channels)))

    def __len__(self) -> int:
        return self.n

    @property
    def labels(self) -> torch.Tensor:
        return self._labels

    def chunk(self, index: int) -> torch.Tensor:
        """Images CHUNK*index .. CHUNK*(index+1)-1 (fewer for the last chunk)."""
        count = min(CHUNK, self.n - index * CHUNK)
        gen = make_generator(0, *self.seed_parts, index)
        return self.make((count, self.channels, self.size, self.size), gen)

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = indices.long().reshape(-1)
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.n):
            raise IndexError("index out of range")
        out = torch.empty(idx.numel(), self.channels, self.size, self.size)
        chunk_of = idx // CHUNK
        for c in chunk_of.unique().tolist():
            where = chunk_of == c
            out[where] = self.chunk(c)[idx[where] - c * CHUNK].float()
        return out, self._labels[idx]


@dataclass(frozen=True, slots=True)
class _Options:
    size: int
    channels: int
    n: int


def _options(request: DatasetRequest, name: str) -> _Options:
    extra = dict(request.extra)
    try:
        channels = int(extra.get("channels", "1"))
        n = int(extra.get("n", str(DEFAULT_SIZE)))
    except ValueError:
        raise UserError(f"dataset {name!r}: 'channels' and 'n' must be integers") from None
    size = request.image_size or 28
    if channels < 1 or n < 1 or size < 1:
        raise UserError(f"dataset {name!r} needs channels >= 1, n >= 1 and image size >= 1")
    return _Options(size, channels, n)


def _builder(name: str, make: ChunkFn) -> Callable[[DatasetRequest], ImageDataset]:
    def build(request: DatasetRequest) -> ImageDataset:
        o = _options(request, name)
        return GeneratedImageDataset(name, make, o.n, o.channels, o.size, (name, request.split, request.seed))

    build.__doc__ = f"The generated {name!r} OOD set for ``request`` (see module docstring)."
    return build


for _name, _make, _what in (
    ("uniform-noise", uniform_noise_images, "i.i.d. uniform [0, 1] noise images"),
    ("gaussian-noise", gaussian_noise_images, "i.i.d. N(0.5, 1) noise images clipped to [0, 1]"),
    ("blobs", blob_images, "smooth random blobs with sharp edges"),
):
    DATASETS.add(_name, _builder(_name, _make), DatasetMeta(f"OOD set: {_what} (generated, seeded)", citation=OE_CITATION))
