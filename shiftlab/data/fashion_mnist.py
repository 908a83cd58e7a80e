"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747) read from its IDX files.

Default location is Debian's ``dataset-fashion-mnist`` package (/usr/share/datasets/fashion-mnist).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from shiftlab.core.errors import DatasetNotFoundError
from shiftlab.data.base import (
    DATASETS,
    DatasetInfo,
    DatasetMeta,
    DatasetRequest,
    ImageDataset,
    TensorImageDataset,
    file_signature,
    split_train_val,
)
from shiftlab.data.download import CACHE, fetch_files

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FILES = (  # the archives' published MD5 checksums
    ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
    ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
    ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
)
CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
INSTALL_HINT = "install it with 'apt-get install dataset-fashion-mnist', pass --data-root DIR, or add --download"


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a uint8 array; malformed files raise a UserError."""
    if not path.exists():
        raise DatasetNotFoundError(f"Fashion-MNIST file {path} is missing; {INSTALL_HINT}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
        zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
        if zero != 0 or dtype_code != 0x08:
            raise ValueError("not an unsigned-byte IDX file")
        dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
        data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
        return data.reshape(dims)
    except (OSError, EOFError, ValueError, struct.error) as exc:
        raise DatasetNotFoundError(f"Fashion-MNIST file {path} is malformed ({exc}); {INSTALL_HINT}") from None


def _find(root: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (root / name).exists():
            return root / name
    return root / f"{stem}.gz"


def load_fashion_mnist_split(root: Path, train: bool) -> TensorImageDataset:
    """The 60,000-image training set or the 10,000-image test set."""
    if not root.is_dir():
        raise DatasetNotFoundError(f"Fashion-MNIST directory {root} does not exist; {INSTALL_HINT}")
    prefix = "train" if train else "t10k"
    image_file, label_file = _find(root, f"{prefix}-images-idx3-ubyte"), _find(root, f"{prefix}-labels-idx1-ubyte")
    images = read_idx(image_file)
    labels = read_idx(label_file)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DatasetNotFoundError(f"Fashion-MNIST files in {root} have mismatched shapes; {INSTALL_HINT}")
    info = DatasetInfo(
        name="fashion-mnist",
        num_classes=10,
        class_names=CLASSES,
        channels=1,
        image_size=(28, 28),
        mean=(0.2860,),
        std=(0.3530,),
    )
    x = torch.from_numpy(images.copy()).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return TensorImageDataset(x, y, info, file_signature([image_file, label_file], "fashion-mnist idx"))


@DATASETS.register(
    "fashion-mnist",
    meta=DatasetMeta(
        "Zalando's 28×28 grayscale clothing images, 10 classes",
        default_root=str(DEFAULT_ROOT),
        citation="Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747",
    ),
)
def fashion_mnist(request: DatasetRequest) -> ImageDataset:
    """Fashion-MNIST train/val/test from IDX files (downloaded and verified with ``--download``)."""
    root = request.root or DEFAULT_ROOT
    if request.download and not (root / FILES[2][0]).exists() and not (root / FILES[2][0][:-3]).exists():
        if request.root is None:
            root = (CACHE / "fashion-mnist").expanduser()
        fetch_files(MIRROR, FILES, root)
    if request.split == "test":
        return load_fashion_mnist_split(root, train=False)
    return split_train_val(load_fashion_mnist_split(root, train=True), request)
