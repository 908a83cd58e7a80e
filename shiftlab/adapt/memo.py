"""MEMO: Zhang, Levine & Finn 2022, "MEMO: Test Time Robustness via Adaptation and Augmentation"
(arXiv:2110.09506).

Each test image is adapted alone, starting from the source model: ``copies`` augmented copies
(flip and padded crop, ``adapt/augment.py``) are predicted, and ``steps`` SGD steps on *all*
parameters minimise the entropy of the mean of their softmax (the marginal over augmentations);
the adapted model then predicts the original image, and is reset before the next one. BatchNorm
layers use the authors' single-point rule for BN models: the source statistics mixed with the
current batch's with weight N / (N + 1), for the augmented batch and for the prediction alike.

Differences from the paper: flip-and-crop copies instead of AugMix chains (the zoo's training
augmentation, label-preserving on 28 px garments); the SGD has no momentum and no weight decay,
as in the authors' CIFAR-10 code.

Args:
    copies: augmented copies per image (default 32).
    lr: SGD learning rate (default 0.005, the paper's CIFAR-10 setting).
    steps: SGD steps per image (default 1).
    prior: prior strength N of the BatchNorm rule (default 16).

Shape: N×C×H×W in [0, 1] -> N×K logits.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from shiftlab.adapt import adapter_args
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(32, 3)).eval()
    >>> adapter = adapter_args("memo", {"copies": "8"}).prepare(net)
    >>> adapter.step(torch.rand(1, 1, 6, 6, generator=torch.Generator().manual_seed(0))).shape
    torch.Size([1, 3])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from shiftlab.adapt.augment import flip_crop_copies
from shiftlab.adapt.base import (
    ADAPTERS,
    AdapterArgs,
    AdapterMeta,
    Mode,
    Snapshot,
    arg,
    image_streams,
    model_copy,
)
from shiftlab.adapt.norm import marginal_entropy, with_prior_batchnorm
from shiftlab.core.seeding import ImageStreams


@ADAPTERS.register("memo", meta=AdapterMeta(
    "single-image adaptation of all parameters by the marginal entropy over augmented copies",
    "Zhang et al. 2022", "2110.09506", modes=(Mode.EPISODIC,), single_image=True, needs_grad=True))
@dataclass(frozen=True)
class MEMOArgs(AdapterArgs):
    """The arguments of MEMO."""

    copies: int = arg(32, low=2, high=1024, help="augmented copies per image")
    lr: float = arg(0.005, low=0.0, help="SGD learning rate")
    steps: int = arg(1, low=1, high=100, help="SGD steps per image")
    prior: float = arg(16.0, low=0.0, help="prior strength N of the BatchNorm statistics (weight N/(N+1))")

    def prepare(self, model: nn.Module) -> MEMOAdapter:
        return MEMOAdapter(model, self)


class MEMOAdapter:
    """MEMO on a copy of the model (every image starts from the source model)."""

    def __init__(self, model: nn.Module, args: MEMOArgs) -> None:
        self.args = args
        self.model = model_copy(model)
        with_prior_batchnorm(self.model, args.prior, count=1)
        params = [p for p in self.model.parameters()]
        for p in params:
            p.requires_grad_(True)
        self.snapshot = Snapshot(self.model)
        self.optimizer = torch.optim.SGD(params, lr=args.lr, momentum=0.0, weight_decay=0.0)

    def step(self, x: torch.Tensor, streams: ImageStreams | None = None) -> torch.Tensor:
        streams = image_streams(x, streams)
        out = []
        with torch.inference_mode(False):
            x = x.detach().clone()
            for i in range(len(x)):
                self.reset()
                image, own = x[i:i + 1], streams.subset(torch.tensor([i]))
                with torch.enable_grad():
                    for s in range(self.args.steps):
                        copies = flip_crop_copies(image, own if s == 0 else own.derive(("memo-step", s)),
                                                  self.args.copies)
                        loss = marginal_entropy(self.model(copies))
                        self.optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        self.optimizer.step()
                with torch.no_grad():
                    out.append(self.model(image))
        return torch.cat(out)

    def reset(self) -> None:
        self.snapshot.restore()
