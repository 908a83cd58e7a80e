"""Where the smoothing noise of an image comes from (design contract 6): one generator per image and
purpose, seeded by (seed, task key, the image's index in the dataset, purpose).

An image's noise therefore never depends on the batch or block it is certified in, on the other
images, or on the batch size: the generator draws fixed-size chunks of samples in order (``noise_chunk``
depends only on the image shape), and each chunk goes through the model as one forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from shiftlab.core.seeding import make_generator

NOISE_VALUES = 1 << 24
"""At most this many noise values (64 MiB in float32) are drawn at once."""
MAX_CHUNK = 1024
"""At most this many noisy copies of an image go through the model in one forward pass."""


def noise_chunk(shape: Sequence[int]) -> int:
    """Noisy copies per forward pass for an image of ``shape`` (C×H×W): the largest power of two with at
    most ``NOISE_VALUES`` values, capped at ``MAX_CHUNK`` (1024 for 28–64 px images, 64 at 224 px)."""
    values = 1
    for d in shape:
        values *= int(d)
    fit = max(1, NOISE_VALUES // max(1, values))
    return min(MAX_CHUNK, 1 << (fit.bit_length() - 1))


@dataclass(frozen=True)
class NoiseSeeds:
    """The noise keys of a batch of images: (seed, task key, dataset index of each image).

    Args:
        seed: the run's base seed.
        task: the task's key (e.g. a ``CertifyCell``'s), so two tasks draw independent noise.
        indices: the position of each image of the batch in its dataset.
    """

    seed: int
    task: str
    indices: tuple[int, ...]

    @classmethod
    def for_images(cls, seed: int, task: str, indices: torch.Tensor | Sequence[int]) -> NoiseSeeds:
        values = indices.tolist() if isinstance(indices, torch.Tensor) else list(indices)
        return cls(int(seed), str(task), tuple(int(i) for i in values))

    def __len__(self) -> int:
        return len(self.indices)

    def subset(self, positions: Sequence[int] | torch.Tensor) -> NoiseSeeds:
        """The keys of some images of the batch (positions in the batch, possibly reordered)."""
        chosen = positions.tolist() if isinstance(positions, torch.Tensor) else list(positions)
        return NoiseSeeds(self.seed, self.task, tuple(self.indices[int(p)] for p in chosen))

    def generator(self, position: int, purpose: str, device: torch.device | str) -> torch.Generator:
        """The generator of image ``position``'s noise for ``purpose`` ("selection", "estimation", "predict")."""
        return make_generator(self.seed, self.task, "smoothing-noise", self.indices[position], purpose, device=device)
