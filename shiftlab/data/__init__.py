"""Datasets: every one yields [0, 1] float images N×C×H×W and int64 labels (design contract 1)."""

from __future__ import annotations

from pathlib import Path

import torch

from shiftlab.core.errors import UserError
from shiftlab.data import (  # noqa: F401  (registration)
    cifar,
    corrupted_files,
    digits,
    fashion_mnist,
    image_folder,
    natural,
    ood_sets,
)
from shiftlab.data.base import (
    DATASETS,
    DatasetInfo,
    DatasetRequest,
    DerivedDataset,
    ImageDataset,
    TensorImageDataset,
    iterate_batches,
    num_batches,
)

SPLITS = ("train", "val", "test")


def load_dataset(
    name: str,
    split: str = "test",
    *,
    root: str | Path | None = None,
    download: bool = False,
    seed: int = 0,
    val_fraction: float = 0.1,
    image_size: int | None = None,
    limit: int | None = None,
    extra: dict[str, str] | None = None,
) -> ImageDataset:
    """Load a registered dataset split; ``limit`` keeps the first N images."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if limit is not None and limit <= 0:
        raise UserError(f"--limit must be a positive number of images, got {limit}")
    builder = DATASETS.get(name)
    request = DatasetRequest(
        split=split,
        root=Path(root).expanduser() if root is not None else None,
        download=download,
        seed=seed,
        val_fraction=val_fraction,
        image_size=image_size,
        extra=tuple(sorted((extra or {}).items())),
    )
    ds = builder(request)
    if limit is not None and limit < len(ds):
        ds = ds.subset(torch.arange(limit), f"the first {limit} images")
    return ds


__all__ = [
    "DerivedDataset",
    "DATASETS",
    "DatasetInfo",
    "DatasetRequest",
    "ImageDataset",
    "TensorImageDataset",
    "iterate_batches",
    "load_dataset",
    "num_batches",
]
