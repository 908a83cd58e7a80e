"""SITA: Khurana et al. 2021, "SITA: Single Image Test-time Adaptation" (arXiv:2112.02355).

AugBN, the paper's method: each test image is adapted alone, from one forward pass without
back-propagation. The image and ``copies`` label-preserving augmented copies of it (flip and padded
crop, ``adapt/augment.py``) form a batch; every BatchNorm layer normalises it with statistics mixed
from the source ones and that batch's, and the image's own row of the output is its prediction.
The mixing weight is written as a prior strength N, as in BN adaptation (Schneider et al. 2020): the
source statistics weigh N / (N + copies + 1). The paper's hyper-parameter-free variant, which picks
the mixing weight per image by the entropy of the prediction, is not implemented.

Images are independent (each is its own group of statistics), so a batch is processed in chunks
of ``CHUNK`` images with one forward pass per chunk; the numbers do not depend on the batch size.

Args:
    copies: augmented copies per image (default 31: batches of 32).
    prior: prior strength N (default 16: the source statistics weigh 1/3 with 31 copies).

Shape: N×C×H×W in [0, 1] -> N×K logits.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from shiftlab.adapt import adapter_args
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(32, 3)).eval()
    >>> adapter = adapter_args("sita", {"copies": "7"}).prepare(net)
    >>> adapter.step(torch.rand(1, 1, 6, 6, generator=torch.Generator().manual_seed(0))).shape
    torch.Size([1, 3])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from shiftlab.adapt.augment import flip_crop_copies
from shiftlab.adapt.base import ADAPTERS, AdapterArgs, AdapterMeta, Mode, arg, image_streams, model_copy
from shiftlab.adapt.norm import grouped, with_prior_batchnorm
from shiftlab.core.errors import UserError
from shiftlab.core.seeding import ImageStreams

CHUNK = 16
"""Test images per forward pass (each with its copies): bounds the memory of one pass."""


@ADAPTERS.register("sita", meta=AdapterMeta(
    "single-image adaptation: BatchNorm statistics from the image and its augmented copies (AugBN)",
    "Khurana et al. 2021", "2112.02355", modes=(Mode.EPISODIC,), single_image=True))
@dataclass(frozen=True)
class SITAArgs(AdapterArgs):
    """The arguments of SITA (AugBN)."""

    copies: int = arg(31, low=1, high=1024, help="augmented copies per image")
    prior: float = arg(16.0, low=0.0, help="prior strength N of the source statistics")

    def prepare(self, model: nn.Module) -> SITAAdapter:
        return SITAAdapter(model, self)


class SITAAdapter:
    """SITA on a copy of the model (stateless: every image starts from the source model)."""

    def __init__(self, model: nn.Module, args: SITAArgs) -> None:
        self.args = args
        self.model = model_copy(model)
        self.layers = with_prior_batchnorm(self.model, args.prior)
        if not self.layers:
            raise UserError("sita estimates BatchNorm statistics from augmented copies, and this model has no "
                            "BatchNorm layer")

    def step(self, x: torch.Tensor, streams: ImageStreams | None = None) -> torch.Tensor:
        streams = image_streams(x, streams)
        k = self.args.copies
        out = []
        with torch.inference_mode():
            for start in range(0, len(x), CHUNK):
                part = x[start:start + CHUNK]
                m = len(part)
                copies = flip_crop_copies(part, streams.subset(torch.arange(start, start + m)), k)
                batch = torch.cat([part.unsqueeze(1), copies.view(m, k, *part.shape[1:])], 1)
                with grouped(self.layers, m):
                    logits = self.model(batch.view(m * (k + 1), *part.shape[1:]))
                out.append(logits.view(m, k + 1, -1)[:, 0])
        return torch.cat(out)

    def reset(self) -> None:
        """Nothing to reset: every image starts from the source model."""
