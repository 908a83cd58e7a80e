"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009) from the python-format batches in a local root.

The batches are pickles by format; shiftlab reads them with a restricted unpickler
(``safe_pickle``) rather than ``pickle.load``. Nothing is downloaded unless the user passes
``--download`` (then torchvision's downloader fetches and checks the archive).
"""

from __future__ import annotations

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
from shiftlab.data.safe_pickle import safe_load

DEFAULT_ROOT = Path("~/.cache/shiftlab/data").expanduser()
LAYOUT = {
    # name: (folder, train files, test files, label key, meta file, names key, mean, std, archive url, md5)
    "cifar10": (
        "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels",
        "batches.meta", "label_names",
        (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
    ),
    "cifar100": (
        "cifar-100-python", ["train"], ["test"], "fine_labels", "meta", "fine_label_names",
        (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
    ),
}


def _read(path: Path, hint: str) -> dict[str, object]:
    if not path.exists():
        raise DatasetNotFoundError(f"{path} is missing; {hint}")
    try:
        obj = safe_load(path.read_bytes())
    except Exception as exc:  # noqa: BLE001 - any failure means a malformed file
        raise DatasetNotFoundError(f"{path} is not a CIFAR python batch ({exc}); {hint}") from None
    if not isinstance(obj, dict):
        raise DatasetNotFoundError(f"{path} is not a CIFAR python batch; {hint}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def load_cifar(name: str, root: Path, train: bool, download: bool = False) -> TensorImageDataset:
    """Read CIFAR-10/100 python batches from ``root/<folder>``."""
    folder, train_files, test_files, label_key, meta_file, names_key, mean, std, url, md5 = LAYOUT[name]
    base = root / folder
    hint = f"pass --data-root DIR holding '{folder}/' or add --download"
    if download and not base.is_dir():
        from torchvision.datasets.utils import download_and_extract_archive

        try:  # torchvision's downloader verifies the archive's MD5 before extracting it
            download_and_extract_archive(url, str(root), md5=md5)
        except (OSError, RuntimeError) as exc:
            raise DatasetNotFoundError(f"downloading {name} from {url} failed: {exc}") from None
    if not base.is_dir():
        raise DatasetNotFoundError(f"{name} not found: {base} does not exist; {hint}")
    images: list[np.ndarray] = []
    labels: list[int] = []
    files = [base / f for f in (train_files if train else test_files)]
    for fname in train_files if train else test_files:
        batch = _read(base / fname, hint)
        try:
            data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels.extend(int(v) for v in batch[label_key])  # type: ignore[attr-defined]
        except (KeyError, ValueError, TypeError) as exc:
            raise DatasetNotFoundError(f"{base / fname} is malformed ({exc}); {hint}") from None
        images.append(data)
    meta = _read(base / meta_file, hint)
    classes = tuple(c.decode() if isinstance(c, bytes) else str(c) for c in meta.get(names_key, []))  # type: ignore[attr-defined]
    x = torch.from_numpy(np.concatenate(images))
    y = torch.tensor(labels, dtype=torch.long)
    if len(y) != len(x):
        raise DatasetNotFoundError(f"{base}: {len(x)} images but {len(y)} labels; {hint}")
    info = DatasetInfo(name, len(classes), classes, 3, (32, 32), mean, std)
    return TensorImageDataset(x, y, info, file_signature([*files, base / meta_file], f"{name} python batches"))


def _load(name: str, request: DatasetRequest) -> ImageDataset:
    full = load_cifar(name, request.root or DEFAULT_ROOT, request.split != "test", request.download)
    return full if request.split == "test" else split_train_val(full, request)


@DATASETS.register(
    "cifar10",
    meta=DatasetMeta("CIFAR-10, 32×32 RGB, 10 classes (python batches)", str(DEFAULT_ROOT), "Krizhevsky 2009"),
)
def cifar10(request: DatasetRequest) -> ImageDataset:
    """CIFAR-10 train/val/test."""
    return _load("cifar10", request)


@DATASETS.register(
    "cifar100",
    meta=DatasetMeta("CIFAR-100, 32×32 RGB, 100 classes (python batches)", str(DEFAULT_ROOT), "Krizhevsky 2009"),
)
def cifar100(request: DatasetRequest) -> ImageDataset:
    """CIFAR-100 train/val/test."""
    return _load("cifar100", request)
