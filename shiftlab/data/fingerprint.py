"""Content fingerprints of datasets: what a dataset identity in the store is made of (design contract 5).

The fingerprint is the sha256 of the decoded images (float32, exactly as ``get_batch`` returns them,
so resizing and channel handling are included) and of the labels, in dataset order. Two folders,
two copies of CIFAR or two preprocessings of one folder never share it.
"""

from __future__ import annotations

import hashlib

import torch

from shiftlab.data.base import ImageDataset

CHUNK = 512


def content_fingerprint(data: ImageDataset, chunk: int = CHUNK) -> str:
    """sha256 (hex) of every image and label of ``data``."""
    h = hashlib.sha256()
    info = data.info
    h.update(f"{len(data)}|{info.channels}|{info.image_size}|{info.num_classes}".encode())
    for start in range(0, len(data), chunk):
        x, y = data.get_batch(torch.arange(start, min(start + chunk, len(data))))
        h.update(x.detach().to(torch.float32).contiguous().cpu().numpy().tobytes())
        h.update(y.detach().to(torch.int64).cpu().numpy().tobytes())
    return h.hexdigest()
