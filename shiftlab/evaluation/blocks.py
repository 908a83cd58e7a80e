"""Fixed blocks of images: the unit every random draw of an evaluation is keyed by (design contract 6).

The test set is cut into consecutive blocks whose size depends only on the image shape (about two
million values per block, a power of two, at most 256 images), never on the batch size or the device.
A corruption cell draws block b from the generator of (seed, cell identity, b), so the corrupted
images, and every number computed from them, are the same for any ``--batch-size``, any device
chunking and any number of workers. Forward passes then run in batches of ``--batch-size`` images
regardless of the block boundaries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

BLOCK_VALUES = 1 << 21
MAX_BLOCK = 256


def block_size(channels: int, height: int, width: int) -> int:
    """Images per block for this image shape (a power of two in [1, 256])."""
    fit = max(1, BLOCK_VALUES // max(1, channels * height * width))
    return min(MAX_BLOCK, 1 << (fit.bit_length() - 1))


def block_ranges(n: int, size: int) -> list[tuple[int, int]]:
    """[(start, stop)) of every block of ``n`` images."""
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def rebatch(parts: Iterable[tuple[int, torch.Tensor, torch.Tensor]], batch_size: int
            ) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Consecutive (start, images, labels) parts regrouped into batches of ``batch_size`` images."""
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    held, first = 0, 0
    for start, x, y in parts:
        if not xs:
            first = start
        xs.append(x)
        ys.append(y)
        held += len(y)
        while held >= batch_size:
            x_all, y_all = torch.cat(xs), torch.cat(ys)
            yield first, x_all[:batch_size], y_all[:batch_size]
            first += batch_size
            xs, ys = [x_all[batch_size:]], [y_all[batch_size:]]
            held -= batch_size
    if held:
        yield first, torch.cat(xs), torch.cat(ys)
