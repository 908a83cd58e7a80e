"""Corrupted test sets on disk in the CIFAR-10-C layout (Hendrycks & Dietterich 2019, arXiv:1903.12261).

Layout of a directory DIR:
- ``<corruption>.npy``: uint8 array (S·N)×H×W×C, the N test images under severity 1, then 2, … (S blocks);
- ``labels.npy``: the N labels repeated S times (CIFAR-10-C stores 50,000 = 5 × 10,000);
- ``corrupt.json`` (written by ``shiftlab corrupt``, ``shiftlab/evaluation/export.py``; optional): severities, table, seed, quantisation, source
  dataset info.
The dataset ``corrupted-files`` reads it: ``load_dataset("corrupted-files", "test", root=DIR,
extra={"corruption": "fog", "severity": "3"})`` (CLI: ``--data-root DIR``). Without ``corrupt.json``
(e.g. the published CIFAR-10-C), the severities are taken as 1..5.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from shiftlab.core.errors import DatasetNotFoundError, UserError
from shiftlab.data.base import (
    DATASETS,
    DatasetInfo,
    DatasetMeta,
    DatasetRequest,
    ImageDataset,
    TensorImageDataset,
    file_signature,
)

META_FILE = "corrupt.json"


def _meta(root: Path) -> dict[str, object]:
    path = root / META_FILE
    return json.loads(path.read_text()) if path.exists() else {}


@DATASETS.register("corrupted-files", meta=DatasetMeta(
    "a CIFAR-10-C-layout directory (<corruption>.npy + labels.npy); extra keys corruption, severity",
    None, "Hendrycks & Dietterich 2019"))
def corrupted_files(request: DatasetRequest) -> ImageDataset:
    """One (corruption, severity) block of a CIFAR-10-C-layout directory, as a test set."""
    root = request.root
    if root is None or not root.is_dir():
        raise DatasetNotFoundError(f"corrupted-files needs --data-root DIR holding <corruption>.npy and labels.npy "
                                   f"(got {root}); write one with `shiftlab corrupt`")
    extra = dict(request.extra)
    available = sorted(p.stem for p in root.glob("*.npy") if p.stem != "labels")
    name = extra.get("corruption")
    if name is None:
        if len(available) != 1:
            raise UserError(f"choose a corruption with extra key corruption=NAME; {root} has: {', '.join(available)}")
        name = available[0]
    if name not in available:
        raise DatasetNotFoundError(f"no {name}.npy in {root}; available: {', '.join(available) or 'none'}")
    meta = _meta(root)
    stored = meta.get("severities", [1, 2, 3, 4, 5])
    if not isinstance(stored, list):
        raise DatasetNotFoundError(f"{root / META_FILE}: severities must be a list, got {stored!r}")
    severities = [int(s) for s in stored]
    try:
        severity = int(extra.get("severity", "1"))
    except ValueError:
        raise UserError(f"severity must be an integer, got {extra.get('severity')!r}") from None
    if severity not in severities:
        raise UserError(f"severity {severity} is not in {root} (has {severities})")
    labels_path = root / "labels.npy"
    if not labels_path.exists():
        raise DatasetNotFoundError(f"{labels_path} is missing")
    data = np.load(root / f"{name}.npy", mmap_mode="r")
    labels = np.load(labels_path)
    if data.ndim != 4 or data.dtype != np.uint8 or data.shape[0] % len(severities):
        raise DatasetNotFoundError(f"{name}.npy must be uint8 (S·N)×H×W×C with S={len(severities)}, got "
                                   f"{data.dtype} {data.shape}")
    n = data.shape[0] // len(severities)
    block = severities.index(severity)
    images = torch.from_numpy(np.array(data[block * n:(block + 1) * n])).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(np.asarray(labels[block * n:(block + 1) * n] if len(labels) > n else labels[:n])).long()
    src = meta.get("info", {})
    assert isinstance(src, dict)
    num_classes = int(src.get("num_classes", int(y.max()) + 1))
    info = DatasetInfo(
        name=f"corrupted-files:{name}/{severity}",
        num_classes=num_classes,
        class_names=tuple(src.get("class_names", [str(i) for i in range(num_classes)])),
        channels=images.shape[1],
        image_size=(images.shape[2], images.shape[3]),
        mean=tuple(src.get("mean", [0.5] * images.shape[1])),
        std=tuple(src.get("std", [0.25] * images.shape[1])),
    )
    signature = file_signature([root / f"{name}.npy", labels_path], f"corrupted-files {name} severity {severity}")
    return TensorImageDataset(images, y, info, signature)


Quantize = Literal["truncate", "round"]
QUANTIZE: tuple[str, ...] = ("truncate", "round")
TRUNCATE_GUARD = 1e-3
"""Grey levels added before truncating: float32 arithmetic lands an exact level k (an unchanged pixel, a
decoded JPEG) at k − a few 1e-5, which plain truncation would store as k − 1 (the reference computes in
float64 on the 0..255 scale, where those stay k)."""


def check_quantize(quantize: str) -> Quantize:
    if quantize not in QUANTIZE:
        raise UserError(f"unknown quantisation {quantize!r}; use truncate (the reference datasets') or round")
    return quantize  # type: ignore[return-value]


def write_grey_levels(x: torch.Tensor, out: torch.Tensor, quantize: Quantize = "truncate") -> None:
    """Store N×C×H×W [0, 1] floats as grey levels into N×H×W×C uint8 ``out`` (channels last, as files hold
    images). ``truncate``: ⌊255·x⌋, what ``np.uint8(...)`` does to the reference generators' float output
    (CIFAR-10-C, Tiny-ImageNet-C, ImageNet-C; Hendrycks & Dietterich 2019); ``round``: the nearest level
    (half to even), which makes files half a level brighter on average. ``x`` is consumed (scaled in place)."""
    scaled = x.mul_(255)
    if quantize == "truncate":
        scaled.add_(TRUNCATE_GUARD)
    else:
        scaled.round_()
    # numpy's float -> uint8 cast (truncation) and channel interleave are vectorised; torch's strided
    # NCHW -> NHWC conversion costs about four times as much
    levels = scaled.detach().cpu().numpy().astype(np.uint8)
    np.stack(list(levels.transpose(1, 0, 2, 3)), axis=-1, out=out.numpy())


def grey_levels(x: torch.Tensor, quantize: Quantize = "truncate") -> torch.Tensor:
    """N×C×H×W [0, 1] floats -> N×H×W×C uint8 grey levels (``write_grey_levels`` into a new tensor)."""
    n, c, h, w = x.shape
    out = torch.empty(n, h, w, c, dtype=torch.uint8)
    write_grey_levels(x.detach().cpu().clone(), out, quantize)
    return out
