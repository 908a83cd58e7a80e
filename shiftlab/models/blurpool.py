"""Anti-aliased down-sampling (BlurPool) and small-cnn-aa, small-cnn with anti-aliased pooling.

Zhang 2019, "Making Convolutional Networks Shift-Invariant Again", arXiv:1904.11486: a strided
max-pool aliases, so a one-pixel shift of the input can change the output a lot; evaluating the max
densely (stride 1), then low-pass filtering with a binomial kernel before sub-sampling
("MaxBlurPool") restores much of the shift equivariance. The filter is the outer product of
[1, 2, 1] / 4 (the paper's "Tri-3"), applied per channel with reflect padding, stride 2.

small-cnn-aa is small-cnn (``models/small_cnn.py``) with every ``MaxPool2d(2)`` replaced by
``MaxPool2d(2, stride=1)`` + BlurPool: the same parameters, the same feature sizes (28 → 14 → 7 → 3).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.models.base import MODELS, ModelConfig, ModelMeta
from shiftlab.models.small_cnn import SmallCNN


class BlurPool(nn.Module):
    """Per-channel binomial low-pass filter of size 3 (reflect padding), then sub-sampling by ``stride``."""

    kernel: torch.Tensor

    def __init__(self, channels: int, stride: int = 2) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(taps, taps) / 16.0
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).clone(), persistent=False)
        self.channels, self.stride = channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(padded, self.kernel.to(x.dtype), stride=self.stride, groups=self.channels)


def max_blur_pool(channels: int) -> nn.Sequential:
    """Zhang 2019's MaxBlurPool: a dense 2×2 max (stride 1), then BlurPool with stride 2."""
    return nn.Sequential(nn.MaxPool2d(2, stride=1), BlurPool(channels, 2))


def anti_alias(model: nn.Module) -> nn.Module:
    """Replace (in place) every ``MaxPool2d(2)`` inside an ``nn.Sequential`` of ``model`` by MaxBlurPool over
    the channels of the last convolution before it in that sequence."""
    for module in list(model.modules()):
        if not isinstance(module, nn.Sequential):
            continue
        channels: int | None = None
        for index, child in enumerate(list(module)):
            if isinstance(child, nn.Conv2d):
                channels = child.out_channels
            elif isinstance(child, nn.MaxPool2d) and child.kernel_size == 2 and child.stride == 2:
                if channels is None:
                    raise ValueError("anti_alias: a 2×2 max-pool without a convolution before it")
                module[index] = max_blur_pool(channels)
    return model


@MODELS.register("small-cnn-aa", meta=ModelMeta("small-cnn with anti-aliased (MaxBlurPool) down-sampling",
                                                "Zhang 2019, arXiv:1904.11486"))
def small_cnn_aa(config: ModelConfig) -> nn.Module:
    net = SmallCNN(config.in_channels, config.num_classes, width=int(config.options.get("width", 32)),
                   hidden=int(config.options.get("hidden", 256)))
    return anti_alias(net)
