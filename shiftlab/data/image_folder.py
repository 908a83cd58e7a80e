"""Any class-per-folder image tree (the ImageNet layout), resized and centre-cropped.

``root/<class>/<image>`` or, when present, ``root/{train,val,test}/<class>/<image>``.
Images are decoded lazily, so a 50,000-image validation set never sits in memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from shiftlab.core.errors import DatasetNotFoundError, UserError
from shiftlab.data.base import (
    DATASETS,
    DatasetInfo,
    DatasetMeta,
    DatasetRequest,
    ImageDataset,
    file_signature,
    split_train_val,
    train_val_indices,
)

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageFolderDataset(ImageDataset):
    """Lazily decoded class-per-folder images, resized (shorter side) then centre-cropped."""

    def __init__(self, root: Path, image_size: int, channels: int = 3, resize_ratio: float = 0.875) -> None:
        if not root.is_dir():
            raise DatasetNotFoundError(f"image folder {root} does not exist; pass --data-root DIR")
        classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not classes:
            raise DatasetNotFoundError(f"image folder {root} has no class sub-folders (expected root/<class>/<image>)")
        files: list[Path] = []
        labels: list[int] = []
        for idx, cls in enumerate(classes):
            for path in sorted((root / cls).rglob("*")):
                if path.suffix.lower() in EXTENSIONS:
                    files.append(path)
                    labels.append(idx)
        if not files:
            raise DatasetNotFoundError(f"image folder {root} has class folders but no images ({', '.join(sorted(EXTENSIONS))})")
        self.root = root
        self.files = files
        self._labels = torch.tensor(labels, dtype=torch.long)
        self.image_size = image_size
        self.resize_to = int(round(image_size / resize_ratio))
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else ((0.5,), (0.25,))
        self.channels = channels
        self.info = DatasetInfo(
            f"image-folder:{root.name}", len(classes), tuple(classes), channels, (image_size, image_size), mean, std
        )

    def __len__(self) -> int:
        return len(self.files)

    def describe(self) -> str:
        return f"image folder {self.root}: {len(self.files)} images"

    def signature(self) -> str | None:
        how = f"image-folder size {self.image_size} resize {self.resize_to} channels {self.channels} labels " + \
              ",".join(str(v) for v in self._labels.tolist())
        return file_signature(self.files, how)

    @property
    def labels(self) -> torch.Tensor:
        return self._labels

    def _decode(self, path: Path) -> torch.Tensor:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as opened:
                img = opened.convert("RGB" if self.channels == 3 else "L")
                w, h = img.size
                scale = self.resize_to / min(w, h)
                img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)
                w, h = img.size
                left, top = (w - self.image_size) // 2, (h - self.image_size) // 2
                img = img.crop((left, top, left + self.image_size, top + self.image_size))
                arr = np.asarray(img, dtype=np.uint8)
        except (OSError, UnidentifiedImageError) as exc:
            raise DatasetNotFoundError(f"cannot read image {path}: {exc}") from None
        t = torch.from_numpy(arr.copy())
        return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = indices.tolist()
        x = torch.stack([self._decode(self.files[i]) for i in idx]).float().div_(255.0)
        return x, self._labels[indices]


def _option(request: DatasetRequest, key: str, default: str) -> str:
    return dict(request.extra).get(key, default)


TEST_FRACTION = 0.2
TEST_SEED = 0


def held_out_test(pool: ImageFolderDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """(rest, test) indices: a seeded hold-out of ``TEST_FRACTION`` of the images, the same every time
    (the seed is fixed, the file list sorted), so train, val and test never overlap."""
    return train_val_indices(len(pool), TEST_FRACTION, TEST_SEED)


@DATASETS.register(
    "image-folder",
    meta=DatasetMeta("any root/<class>/<image> tree (ImageNet layout); --data-root required, --image-size (default 224); "
                     "without root/test, a fixed seeded 20 % hold-out is the test split"),
)
def image_folder(request: DatasetRequest) -> ImageDataset:
    """An image-folder tree: ``root/<split>`` when that folder exists; otherwise the images of
    ``root/train`` (or of ``root``) are split once, without overlap: a fixed seeded 20 % hold-out is the
    test split and train/val divide the rest."""
    if request.root is None:
        raise UserError("dataset 'image-folder' needs --data-root DIR (a root/<class>/<image> tree)")
    size = request.image_size or 224
    channels = int(_option(request, "channels", "3"))
    split_dir = request.root / request.split
    if split_dir.is_dir():
        return ImageFolderDataset(split_dir, size, channels)
    train_dir = request.root / "train"
    pool = ImageFolderDataset(train_dir if train_dir.is_dir() else request.root, size, channels)
    if (request.root / "test").is_dir():
        return split_train_val(pool, request)
    rest, test = held_out_test(pool)
    if request.split == "test":
        return pool.subset(test, f"test split (fixed {TEST_FRACTION:.0%} hold-out, seed {TEST_SEED}): {len(test)} images")
    remaining = pool.subset(rest, f"{len(rest)} images outside the {TEST_FRACTION:.0%} test hold-out")
    return split_train_val(remaining, request)
