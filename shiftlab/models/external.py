"""Third-party architectures by name: ``torchvision:NAME`` and ``timm:NAME``.

Weights are never downloaded unless the config asks (``options.pretrained``), and a
grayscale dataset gets its channel repeated to the 3 channels these networks expect.
"""

from __future__ import annotations

import torch
from torch import nn

from shiftlab.core.errors import UserError
from shiftlab.core.seeding import derive_seed, isolated_global_rng
from shiftlab.models.base import MODELS, ModelConfig, ModelMeta, Normalized, build_model
from shiftlab.models.checkpoint import ModelCard, fingerprint


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
        if config.num_classes != 1000:
            raise UserError("pretrained torchvision weights have 1000 classes; the dataset has "
                            f"{config.num_classes}")
        net = tvm.get_model(name, weights=weights)
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





NAMED_PREFIXES = ("torchvision:", "timm:")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def is_named(reference: str) -> bool:
    """True for a third-party model named by its library (``torchvision:resnet18``), not a checkpoint."""
    return str(reference).startswith(NAMED_PREFIXES)


def named_model(reference: str, dataset: str, num_classes: int, channels: int, image_size: tuple[int, int],
                mean: tuple[float, ...], std: tuple[float, ...], pretrained: str | None = None,
                seed: int = 0) -> tuple[Normalized, ModelCard]:
    """Build ``torchvision:NAME`` / ``timm:NAME`` for a dataset and write its card on the fly.

    Without ``pretrained`` the weights are a seeded random initialisation; with it (e.g. "DEFAULT"),
    the library's weights, which it downloads once into its own cache, with ImageNet's normalisation.
    """
    if pretrained:
        mean, std = IMAGENET_MEAN[:channels] if channels == 3 else mean, IMAGENET_STD[:channels] if channels == 3 else std
    options = {"pretrained": pretrained} if pretrained else {}
    config = ModelConfig(reference, num_classes, channels, image_size, tuple(mean), tuple(std), options)
    with isolated_global_rng(derive_seed(seed, "init", reference)):
        model = build_model(config)
    card = ModelCard(config, name=f"{reference} ({pretrained or 'random init'})", dataset=dataset,
                     recipe={"name": "pretrained" if pretrained else "untrained", "args": {"weights": pretrained}})
    card.fingerprint = fingerprint(model, config)
    return model.eval(), card
