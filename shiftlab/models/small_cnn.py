"""small-cnn: a fast 3-conv BN network for 28/32 px images, shiftlab's demo model.

Three conv-BN-ReLU-maxpool stages (32, 64, 128 channels) and a 256-unit hidden layer;
~0.39 M parameters, about a minute per Fashion-MNIST epoch on 2 CPU cores.
"""

from __future__ import annotations

import torch
from torch import nn

from shiftlab.models.base import MODELS, ModelConfig, ModelMeta


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class SmallCNN(nn.Module):
    """conv(w) → conv(2w) → conv(4w), each BN-ReLU-pool, then 3×3 pool → fc(hidden) → fc(classes)."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32, hidden: int = 256) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _stage(in_channels, width), _stage(width, 2 * width), _stage(2 * width, 4 * width)
        )
        self.pool = nn.AdaptiveAvgPool2d(3)
        self.hidden = nn.Sequential(
            nn.Flatten(), nn.Linear(4 * width * 9, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)
        )
        self.classifier = nn.Linear(hidden, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate (hidden-layer) features, N×hidden."""
        return self.hidden(self.pool(self.features(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


@MODELS.register("small-cnn", meta=ModelMeta("3-conv BN CNN, ~0.39 M parameters; fast on CPU"))
def small_cnn(config: ModelConfig) -> nn.Module:
    return SmallCNN(
        config.in_channels,
        config.num_classes,
        width=int(config.options.get("width", 32)),
        hidden=int(config.options.get("hidden", 256)),
    )
