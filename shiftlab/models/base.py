"""Model registry, the architecture config, and ``Normalized`` (normalisation inside the model).

Architectures in the zoo expose ``forward_features(x)`` (penultimate features) and a
``classifier`` head, so feature-based detectors and manifold mixup can reach them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from shiftlab.core.registry import Registry


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Everything needed to rebuild a model's architecture (weights excluded)."""

    arch: str
    num_classes: int
    in_channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_size"] = list(self.image_size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return cls(
            arch=str(d["arch"]),
            num_classes=int(d["num_classes"]),
            in_channels=int(d["in_channels"]),
            image_size=(int(d["image_size"][0]), int(d["image_size"][1])),
            mean=tuple(float(v) for v in d["mean"]),
            std=tuple(float(v) for v in d["std"]),
            options=dict(d.get("options", {})),
        )


@dataclass(frozen=True, slots=True)
class ModelMeta:
    """Registry metadata of an architecture."""

    description: str
    paper: str = ""


ModelBuilder = Callable[[ModelConfig], nn.Module]
MODELS: Registry[ModelBuilder, ModelMeta] = Registry("model")


class Normalized(nn.Module):
    """Wrap a network so it takes [0, 1] images: ``model((x - mean) / std)``.

    Keeping normalisation inside the model makes attacks and corruptions comparable
    across models (as RobustBench does).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalize(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features of the wrapped network (zoo architectures only)."""
        inner = self.model
        if not hasattr(inner, "forward_features"):
            raise AttributeError(f"{type(inner).__name__} has no forward_features; use a feature hook")
        return inner.forward_features(self.normalize(x))  # type: ignore[operator]


def build_model(config: ModelConfig) -> Normalized:
    """Build the registered architecture ``config.arch`` wrapped in ``Normalized``."""
    key = config.arch.split(":", 1)[0] + ":" if ":" in config.arch else config.arch
    net = MODELS.get(key)(config)
    return Normalized(net, config.mean, config.std)
