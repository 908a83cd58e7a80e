"""Numerics and memory layout of a training run: mixed precision and channels-last tensors.

- ``amp="bf16"``: forwards and losses under ``torch.autocast`` in bfloat16 (CPU or CUDA); no loss
  scaling is needed, bfloat16 has float32's exponent range.
- ``amp="fp16"``: autocast in float16 with dynamic loss scaling (``torch.amp.GradScaler``), the scheme
  of Micikevicius et al. 2018, "Mixed Precision Training", arXiv:1710.03740; CUDA only.
- ``channels_last``: 4-D weights and input batches in NHWC layout, which convolutions run faster in
  (tensor cores on CUDA, oneDNN on the CPU); the numbers are the same up to float rounding.

Weights, optimiser state and the gradient that an inner attack takes with respect to its input stay
float32: ``float32_block`` switches autocast off around the adversarial maximisers, so an attack's step
direction never comes from a half-precision gradient. The rest of a recipe's step runs under autocast,
augmentations included: the few that convolve (PRIME's blur) then do so in reduced precision, about the
resolution of an 8-bit image for bf16.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from shiftlab.core.devices import AMP_DTYPES


def float32_block(x: torch.Tensor) -> contextlib.AbstractContextManager[Any]:
    """Autocast off (for ``x``'s device type) inside the block: the forwards and gradients there are float32."""
    return torch.autocast(x.device.type, enabled=False)


class Precision:
    """Autocast, loss scaling and memory layout for one run on ``device``.

    Args:
        amp: None (float32), "bf16" or "fp16" (the latter with a GradScaler; CUDA only).
        channels_last: NHWC weights and inputs.
        device: where the run computes.
    """

    def __init__(self, amp: str | None, channels_last: bool, device: torch.device | str) -> None:
        self.amp, self.channels_last, self.device = amp, channels_last, torch.device(device)
        self.dtype = AMP_DTYPES[amp] if amp is not None else None
        self.scaler = torch.amp.GradScaler(self.device.type) if amp == "fp16" else None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The autocast region of forwards and losses (nothing without ``amp``)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def prepare(self, model: nn.Module) -> nn.Module:
        """``model`` with its 4-D weights in channels-last layout when asked (in place)."""
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """A batch in the run's layout (N×C×H×W batches become channels-last when asked)."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backward and optimiser step, through the loss scaler for fp16 (a step with inf/NaN gradients is skipped)."""
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any] | None:
        """The loss scaler's state (for resume), None without one."""
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
