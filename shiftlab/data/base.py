"""Dataset contract: every dataset yields float images in [0, 1], N×C×H×W, with integer labels.

Normalisation never happens here; it lives inside the model (``models.Normalized``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from shiftlab.core.registry import Registry


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """What a model and a report need to know about a dataset."""

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]


class ImageDataset:
    """A finite, indexable set of labelled images; ``get_batch`` returns [0, 1] floats."""

    info: DatasetInfo

    def __len__(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def labels(self) -> torch.Tensor:  # pragma: no cover - interface
        """All labels as a 1-D int64 tensor."""
        raise NotImplementedError

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        """Images (float32 in [0, 1], N×C×H×W) and labels (int64) at ``indices``."""
        raise NotImplementedError

    def get_levels(self, indices: torch.Tensor) -> torch.Tensor | None:
        """The stored grey levels at ``indices`` (uint8 N×H×W×C, channels last) when the images are held as
        uint8 — ``get_batch`` is then exactly these / 255 — else None."""
        return None

    def subset(self, indices: torch.Tensor, note: str = "") -> ImageDataset:
        """A view of this dataset restricted to ``indices`` (kept in the given order); ``note`` says
        which part it is (shown in cards)."""
        return SubsetImageDataset(self, indices, note)

    def describe(self) -> str:
        """Which images these are, in words (model and robustness cards show it)."""
        return f"{self.info.name}: {len(self)} images"

    def signature(self) -> str | None:
        """A cheap identity of where the images come from (files with their sizes and modification
        times, and how they are read), under which the content fingerprint is cached; None when the
        data is cheap to hash every time (generated sets)."""
        return None


class TensorImageDataset(ImageDataset):
    """Images held in memory as uint8 N×C×H×W (4× smaller than float)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, info: DatasetInfo,
                 signature: str | None = None) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError("images must be a uint8 N×C×H×W tensor")
        if labels.shape != (images.shape[0],):
            raise ValueError("labels must have one entry per image")
        self.images = images
        self._labels = labels.long()
        self.info = info
        self._signature = signature

    def signature(self) -> str | None:
        return self._signature

    def describe(self) -> str:
        return f"{self.info.name}: {len(self)} images"

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def labels(self) -> torch.Tensor:
        return self._labels

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[indices].float().div_(255.0), self._labels[indices]

    def get_levels(self, indices: torch.Tensor) -> torch.Tensor | None:
        return self.images[indices].permute(0, 2, 3, 1).contiguous()


class DerivedDataset(ImageDataset):
    """A dataset computed image by image from ``base``: the same length and labels; ``info`` defaults to the
    base's. Subclasses define ``get_batch``."""

    def __init__(self, base: ImageDataset, info: DatasetInfo | None = None) -> None:
        self.base = base
        self.info = info if info is not None else base.info

    def __len__(self) -> int:
        return len(self.base)

    @property
    def labels(self) -> torch.Tensor:
        return self.base.labels


class SubsetImageDataset(ImageDataset):
    """A dataset restricted to some indices of another."""

    def __init__(self, base: ImageDataset, indices: torch.Tensor, note: str = "") -> None:
        self.base = base
        self.indices = indices.long()
        self.info = base.info
        self.note = note

    def describe(self) -> str:
        part = self.note or f"{len(self)} selected images"
        return f"{part} of {self.base.describe()}"

    def __len__(self) -> int:
        return int(self.indices.numel())

    @property
    def labels(self) -> torch.Tensor:
        return self.base.labels[self.indices]

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.base.get_batch(self.indices[indices])

    def get_levels(self, indices: torch.Tensor) -> torch.Tensor | None:
        return self.base.get_levels(self.indices[indices])

    def signature(self) -> str | None:
        base = self.base.signature()
        if base is None:
            return None
        digest = hashlib.sha256(self.indices.numpy().astype("<i8").tobytes()).hexdigest()[:16]
        return f"{base}|subset:{len(self.indices)}:{digest}"


def iterate_batches(
    dataset: ImageDataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (images, labels) batches; with ``shuffle`` the order comes from ``generator`` only."""
    n = len(dataset)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        x, y = dataset.get_batch(order[start : start + batch_size])
        if device is not None:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        yield x, y


def num_batches(dataset: ImageDataset, batch_size: int, drop_last: bool = False) -> int:
    """How many batches ``iterate_batches`` yields."""
    n = len(dataset)
    return n // batch_size if drop_last else -(-n // batch_size)


@dataclass(frozen=True, slots=True)
class DatasetRequest:
    """What a dataset builder is asked for.

    Args:
        split: "train", "val" or "test". "val" is a seeded hold-out of the training set.
        root: where the files are; ``None`` means the dataset's default location.
        download: fetch missing files (only for datasets that support it, only when asked).
        seed: seed of the train/val split.
        val_fraction: share of the training set held out as "val".
        image_size: resize target for datasets that resize (image folders).
    """

    split: str = "test"
    root: Path | None = None
    download: bool = False
    seed: int = 0
    val_fraction: float = 0.1
    image_size: int | None = None
    extra: tuple[tuple[str, str], ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class DatasetMeta:
    """Registry metadata of a dataset builder."""

    description: str
    default_root: str | None = None
    citation: str = ""


DatasetBuilder = Callable[[DatasetRequest], ImageDataset]
DATASETS: Registry[DatasetBuilder, DatasetMeta] = Registry("dataset")


def train_val_indices(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic split of range(n) into (train, val) index tensors, seeded."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError("val_fraction must be in [0, 1)")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(round(n * val_fraction))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def split_train_val(
    train: ImageDataset, request: DatasetRequest
) -> ImageDataset:
    """The "train" or "val" part of a training set for ``request.split``."""
    tr, va = train_val_indices(len(train), request.val_fraction, request.seed)
    chosen = tr if request.split == "train" else va
    share = 1 - request.val_fraction if request.split == "train" else request.val_fraction
    return train.subset(chosen, f"{request.split} split ({share:.0%}, seed {request.seed}): {len(chosen)} images")


def file_signature(paths: Iterable[Path], how: str = "") -> str:
    """Where data comes from: each file's resolved path, size and modification time, plus how it is read."""
    parts = [how]
    for path in paths:
        st = path.stat()
        parts.append(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
