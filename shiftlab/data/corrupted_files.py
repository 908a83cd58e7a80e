"""Corrupted test sets on disk in the CIFAR-10-C layout (Hendrycks & Dietterich 2019, arXiv:1903.12261).

Layout of a directory DIR:
- ``<corruption>.npy``: uint8 array (S·N)×H×W×C, the N test images under severity 1, then 2, … (S blocks);
- ``labels.npy``: the N labels repeated S times (CIFAR-10-C stores 50,000 = 5 × 10,000);
- ``corrupt.json`` (written by ``shiftlab corrupt``, optional): severities, table, seed, source dataset info.
The dataset ``corrupted-files`` reads it: ``load_dataset("corrupted-files", "test", root=DIR,
extra={"corruption": "fog", "severity": "3"})`` (CLI: ``--data-root DIR``). Without ``corrupt.json``
(e.g. the published CIFAR-10-C), the severities are taken as 1..5.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from shiftlab.data.base import (
    DATASETS,
    DatasetInfo,
    DatasetMeta,
    DatasetRequest,
    ImageDataset,
    TensorImageDataset,
    iterate_batches,
)
from shiftlab.errors import DatasetNotFoundError, UserError

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
    severities = [int(s) for s in meta.get("severities", [1, 2, 3, 4, 5])]  # type: ignore[union-attr]
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
    return TensorImageDataset(images, y, info)


def export_corrupted(dataset: ImageDataset, out: Path, corruptions: Sequence[str], severities: Sequence[int],
                     seed: int, table: str | None, batch_size: int = 256, source: str = "") -> list[Path]:
    """Write ``dataset`` corrupted by each corruption at each severity in the CIFAR-10-C layout.

    Batch b of (corruption, severity) uses the generator derived from (seed, "corrupt", name, severity, b).
    """
    from shiftlab.seeding import make_generator
    from shiftlab.shifts import SHIFTS, resolve_table

    out.mkdir(parents=True, exist_ok=True)
    h, w = dataset.info.image_size
    tname = resolve_table(table, h, w)
    n = len(dataset)
    written = []
    for name in corruptions:
        fn = SHIFTS.get(name)
        path = out / f"{name}.npy"
        arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8,
                                        shape=(len(severities) * n, h, w, dataset.info.channels))
        for k, severity in enumerate(severities):
            start = k * n
            for b, (x, _) in enumerate(iterate_batches(dataset, batch_size)):
                y = fn(x, severity, make_generator(seed, "corrupt", name, severity, b), tname)
                u8 = torch.round(y * 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
                arr[start:start + len(u8)] = u8
                start += len(u8)
        arr.flush()
        del arr
        written.append(path)
    np.save(out / "labels.npy", np.tile(dataset.labels.numpy().astype(np.int64), len(severities)))
    info = dataset.info
    (out / META_FILE).write_text(json.dumps({
        "source": source, "n": n, "severities": list(severities), "table": tname, "seed": seed,
        "corruptions": list(corruptions),
        "info": {"num_classes": info.num_classes, "class_names": list(info.class_names),
                 "mean": list(info.mean), "std": list(info.std)},
        "paper": "Hendrycks & Dietterich 2019, arXiv:1903.12261",
    }, indent=2))
    return written
