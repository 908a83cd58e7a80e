"""scikit-learn's bundled 8×8 handwritten digits (UCI optdigits), upscaled to 28×28.

Useful as an out-of-distribution set for Fashion-MNIST; needs no download.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from shiftlab.data.base import (
    DATASETS,
    DatasetInfo,
    DatasetMeta,
    DatasetRequest,
    ImageDataset,
    TensorImageDataset,
    train_val_indices,
)


@DATASETS.register(
    "digits",
    meta=DatasetMeta(
        "scikit-learn's 1,797 8×8 digits upscaled bilinearly to 28×28 grayscale",
        citation="Alpaydin & Kaynak 1998, UCI optdigits",
    ),
)
def digits(request: DatasetRequest) -> ImageDataset:
    """Digits split 80/20 into train/test (seeded by 0, fixed), train further into train/val."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images).float().div(16.0).unsqueeze(1)
    size = request.image_size or 28
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    images = (x * 255).round().to(torch.uint8)
    labels = torch.from_numpy(bunch.target).long()
    info = DatasetInfo(
        name="digits",
        num_classes=10,
        class_names=tuple(str(i) for i in range(10)),
        channels=1,
        image_size=(size, size),
        mean=(0.1,),
        std=(0.25,),
    )
    rest, test = train_val_indices(len(labels), 0.2, seed=0)
    if request.split == "test":
        idx = test
    else:
        tr, va = train_val_indices(len(rest), request.val_fraction, request.seed)
        idx = rest[tr if request.split == "train" else va]
    return TensorImageDataset(images[idx], labels[idx], info)
