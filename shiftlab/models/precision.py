"""Evaluation numerics: a classifier run under mixed precision and/or in channels-last layout.

``Precise(model, amp, channels_last)`` wraps a classifier so that every forward pass runs under
``torch.autocast`` (``amp`` "bf16" or "fp16") and/or takes its input in NHWC layout, and returns float32
logits whatever the autocast dtype, so every metric downstream is computed in float32.

Mixed precision changes numbers (a few top-1 decisions flip in bfloat16), so a model evaluated under
``amp`` is recorded as its own model: :func:`precision_fingerprint` derives its fingerprint from the
weights' and the dtype, and its rows never mix with the float32 ones. Channels-last changes the memory
layout only (the same numbers up to float rounding, like another device), so it keeps the fingerprint.

Anything that takes a gradient with respect to the input (the attacks) should run on
:func:`float32_model`, the wrapped classifier without autocast, so a step direction never comes from a
half-precision gradient.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from shiftlab.core.devices import AMP_DTYPES


class Precise(nn.Module):
    """``model`` under autocast in ``amp`` ("bf16", "fp16" or None) with NHWC input when ``channels_last``."""

    def __init__(self, model: nn.Module, amp: str | None, channels_last: bool) -> None:
        super().__init__()
        self.inner = model.to(memory_format=torch.channels_last) if channels_last else model
        self.amp, self.channels_last = amp, channels_last
        self.dtype = AMP_DTYPES[amp] if amp is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.dtype is None:
            return self.inner(x)
        with torch.autocast(x.device.type, dtype=self.dtype):
            logits = self.inner(x)
        return logits.float()


def with_precision(model: nn.Module, amp: str | None, channels_last: bool) -> nn.Module:
    """``model`` wrapped in :class:`Precise` when either setting asks for it, else ``model`` itself."""
    return Precise(model, amp, channels_last) if amp is not None or channels_last else model


def float32_model(model: nn.Module) -> nn.Module:
    """The classifier without autocast (layout kept): what input gradients are taken through."""
    if isinstance(model, Precise) and model.dtype is not None:
        return Precise(model.inner, None, model.channels_last) if model.channels_last else model.inner
    return model


def precision_fingerprint(fingerprint: str, amp: str | None) -> str:
    """The fingerprint results are stored under: the weights' own in float32, a derived one under ``amp``."""
    if amp is None:
        return fingerprint
    return hashlib.sha256(f"{fingerprint}|amp={amp}".encode()).hexdigest()


def precision_name(name: str, amp: str | None) -> str:
    """The model's display name under ``amp`` ("erm [bf16]")."""
    return name if amp is None else f"{name} [{amp}]"
