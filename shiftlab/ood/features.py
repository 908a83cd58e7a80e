"""Penultimate-feature access for any classifier (used by Mahalanobis and KNN detectors).

``penultimate_features(model, x)`` uses ``model.forward_features`` when the model has one (every
shiftlab zoo architecture wrapped in ``Normalized`` does); otherwise it runs ``model(x)`` with a
forward hook that records the *input* of a named layer, by default the last ``nn.Linear`` in
``model.modules()`` order (the classifier head of almost every image classifier).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from shiftlab.core.errors import UserError


def last_linear_name(model: nn.Module) -> str:
    """Name (as in ``named_modules``) of the last ``nn.Linear`` of ``model``."""
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not names:
        raise UserError(
            f"{type(model).__name__} has no nn.Linear layer; pass layer='<module name>' to choose the feature layer"
        )
    return names[-1]


def hooked_input(model: nn.Module, x: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(input of module ``layer`` flattened to N×D, model output) for one forward pass of ``x``."""
    modules = dict(model.named_modules())
    if layer not in modules:
        raise UserError(f"model has no module named {layer!r}; known linear layers: "
                        f"{', '.join(n for n, m in modules.items() if isinstance(m, nn.Linear)) or 'none'}")
    captured: list[torch.Tensor] = []

    def record(_module: nn.Module, inputs: tuple[Any, ...], _output: Any) -> None:
        captured.append(inputs[0])

    handle = modules[layer].register_forward_hook(record)
    try:
        out = model(x)
    finally:
        handle.remove()
    if not captured:
        raise UserError(f"module {layer!r} was not called in the forward pass; choose another layer")
    return captured[-1].flatten(1), out


def penultimate_features(model: nn.Module, x: torch.Tensor, layer: str | None = None) -> torch.Tensor:
    """N×D penultimate features of ``x`` (images in [0, 1], N×C×H×W).

    Args:
        model: any classifier taking [0, 1] inputs.
        x: input batch.
        layer: module name whose input is the feature; ``None`` uses ``model.forward_features`` when
            available, else the last ``nn.Linear``.
    """
    if layer is None:
        forward_features = getattr(model, "forward_features", None)
        if forward_features is not None:
            try:
                return forward_features(x).flatten(1)
            except AttributeError:  # Normalized around a network without forward_features
                pass
        layer = last_linear_name(model)
    return hooked_input(model, x, layer)[0]
