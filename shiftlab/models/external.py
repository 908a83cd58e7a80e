"""Third-party architectures by name: ``torchvision:NAME`` and ``timm:NAME``.

Weights are never downloaded unless the config asks (``options.pretrained``), and a
grayscale dataset gets its channel repeated to the 3 channels these networks expect.
"""

from __future__ import annotations

import torch
from torch import nn

from shiftlab.errors import UserError
from shiftlab.models.base import MODELS, ModelConfig, ModelMeta


class RepeatChannels(nn.Module):
    """Feed a 1-channel image to a 3-channel network by repeating the channel."""

    def __init__(self, net: nn.Module, channels: int = 3) -> None:
        super().__init__()
        self.net = net
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, self.channels, -1, -1)
        return self.net(x)


def _arch_name(config: ModelConfig, prefix: str) -> str:
    name = config.arch.split(":", 1)[1] if ":" in config.arch else ""
    if not name:
        raise UserError(f"write the architecture as '{prefix}:NAME', e.g. '{prefix}:resnet18'")
    return name


@MODELS.register("torchvision:", meta=ModelMeta("any torchvision classification model, as torchvision:NAME"))
def torchvision_model(config: ModelConfig) -> nn.Module:
    from torchvision import models as tvm

    name = _arch_name(config, "torchvision")
    if name not in tvm.list_models(module=tvm):
        raise UserError(f"torchvision has no classification model {name!r}; see torchvision.models.list_models()")
    weights = config.options.get("pretrained")
    if weights:
        net = tvm.get_model(name, weights=weights)
        if config.num_classes != 1000:
            raise UserError("pretrained torchvision weights have 1000 classes; the dataset has "
                            f"{config.num_classes}")
    else:
        net = tvm.get_model(name, weights=None, num_classes=config.num_classes)
    return RepeatChannels(net) if config.in_channels == 1 else net


@MODELS.register("timm:", meta=ModelMeta("any timm model, as timm:NAME (needs the [timm] extra)"))
def timm_model(config: ModelConfig) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise UserError("timm models need timm: pip install 'shiftlab[timm]'") from None
    name = _arch_name(config, "timm")
    if not timm.list_models(name):
        raise UserError(f"timm has no model {name!r}; see timm.list_models()")
    return timm.create_model(
        name,
        pretrained=bool(config.options.get("pretrained", False)),
        num_classes=config.num_classes,
        in_chans=config.in_channels,
    )



