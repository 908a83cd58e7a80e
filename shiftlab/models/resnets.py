"""The robustness literature's standard CIFAR-scale networks.

- PreAct ResNet-18: He, Zhang, Ren & Sun 2016, "Identity Mappings in Deep Residual Networks", arXiv:1603.05027.
- Wide ResNet (WRN-d-k): Zagoruyko & Komodakis 2016, "Wide Residual Networks", arXiv:1605.07146.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.models.base import MODELS, ModelConfig, ModelMeta


class PreActBlock(nn.Module):
    """BN-ReLU-conv ×2 with an identity (or 1×1 projection) shortcut; optional dropout."""

    def __init__(self, cin: int, cout: int, stride: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.dropout = dropout
        self.shortcut = (
            nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = F.relu(self.bn2(out))
        if self.dropout > 0:
            out = F.dropout(out, self.dropout, self.training)
        return self.conv2(out) + skip


class PreActResNet(nn.Module):
    """Stem conv, four (or three) pre-activation stages, BN-ReLU, global pool, linear head."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        widths: tuple[int, ...],
        depths: tuple[int, ...],
        stem: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False)
        layers: list[nn.Module] = []
        cin = stem
        for i, (w, d) in enumerate(zip(widths, depths, strict=True)):
            for j in range(d):
                layers.append(PreActBlock(cin, w, 2 if (j == 0 and i > 0) else 1, dropout))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(cin)
        self.classifier = nn.Linear(cin, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.layers(self.stem(x))))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


@MODELS.register("preact-resnet18", meta=ModelMeta("PreAct ResNet-18 (11 M parameters)", "He et al. 2016, arXiv:1603.05027"))
def preact_resnet18(config: ModelConfig) -> nn.Module:
    return PreActResNet(config.in_channels, config.num_classes, (64, 128, 256, 512), (2, 2, 2, 2), 64)


def wide_resnet(config: ModelConfig, depth: int, widen: int) -> nn.Module:
    """WRN-depth-widen: three stages of (depth-4)/6 pre-activation blocks of width 16·k, 32·k, 64·k."""
    n = (depth - 4) // 6
    dropout = float(config.options.get("dropout", 0.0))
    return PreActResNet(
        config.in_channels, config.num_classes, (16 * widen, 32 * widen, 64 * widen), (n, n, n), 16, dropout
    )


@MODELS.register("wrn-16-4", meta=ModelMeta("Wide ResNet 16-4 (2.7 M parameters)", "Zagoruyko & Komodakis 2016, arXiv:1605.07146"))
def wrn_16_4(config: ModelConfig) -> nn.Module:
    return wide_resnet(config, 16, 4)


@MODELS.register("wrn-28-10", meta=ModelMeta("Wide ResNet 28-10 (36 M parameters)", "Zagoruyko & Komodakis 2016, arXiv:1605.07146"))
def wrn_28_10(config: ModelConfig) -> nn.Module:
    return wide_resnet(config, 28, 10)
