"""Label-preserving augmented copies of test images for the single-image adapters (SITA, MEMO).

Each copy is a horizontal flip (p = 0.5) and a crop of the image padded by ``pad`` pixels (edge
pixels repeated, so a corrupted background stays the same), the augmentation the zoo trains with.
Every draw comes from the image's own stream, so an image's copies do not depend on its batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from shiftlab.core.seeding import ImageStreams

PAD = 2


def flip_crop_copies(x: torch.Tensor, streams: ImageStreams, copies: int, pad: int = PAD) -> torch.Tensor:
    """``copies`` augmented copies of every image.

    Shape: N×C×H×W in [0, 1] -> (N·copies)×C×H×W in [0, 1]; image i's copies are rows
    i·copies … (i+1)·copies − 1.
    """
    n, c, h, w = x.shape
    dev = x.device
    flip = (streams.rand("flip", (copies,), dev) < 0.5).reshape(-1, 1, 1, 1)
    dy = streams.randint("crop-y", 2 * pad + 1, (copies,), dev).reshape(-1)
    dx = streams.randint("crop-x", 2 * pad + 1, (copies,), dev).reshape(-1)
    rep = x.repeat_interleave(copies, 0)
    rep = torch.where(flip, rep.flip(3), rep)
    if pad == 0:
        return rep
    padded = F.pad(rep, (pad, pad, pad, pad), mode="replicate")
    m = rep.shape[0]
    rows = (dy.view(-1, 1) + torch.arange(h, device=dev)).view(m, 1, h, 1).expand(m, c, h, w + 2 * pad)
    cropped = padded.gather(2, rows)
    cols = (dx.view(-1, 1) + torch.arange(w, device=dev)).view(m, 1, 1, w).expand(m, c, h, w)
    return cropped.gather(3, cols)
