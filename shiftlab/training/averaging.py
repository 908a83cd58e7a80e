"""Exponential moving average of the weights (Polyak & Juditsky 1992; as used for robust training by
Gowal et al. 2020, arXiv:2010.03593): ``ema ← d·ema + (1 − d)·w`` after every optimiser step, with
the warm-up ``d_t = min(decay, (1 + t) / (10 + t))`` so short runs are not dominated by the
initial weights. Buffers (batch-norm statistics) are averaged the same way; integer buffers are copied.
"""

from __future__ import annotations

import torch
from torch import nn


class WeightAverage:
    """EMA of a model's state dict, kept on the model's device."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in model.state_dict().items():
            avg = self.state[k]
            if avg.is_floating_point():
                avg.mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                avg.copy_(v)
        self.updates += 1

    def state_dict(self) -> dict[str, object]:
        return {"decay": self.decay, "updates": self.updates, "state": {k: v.cpu() for k, v in self.state.items()}}

    def load_state_dict(self, saved: dict[str, object]) -> None:
        self.updates = int(saved["updates"])  # type: ignore[call-overload]
        state = saved["state"]
        assert isinstance(state, dict)
        for k, v in state.items():
            self.state[k].copy_(v)

    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into ``model`` (strict)."""
        model.load_state_dict(self.state, strict=True)
