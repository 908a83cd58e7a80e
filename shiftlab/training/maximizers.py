"""The inner maximisation of adversarial training: a configuration of the attack engine.

There is one projected-gradient loop in shiftlab, ``shiftlab.attacks.engine.gradient_ascent``, and
one projection, ``NormOps`` (STYLE rule 4); ``InnerMax`` only chooses its options:

- PGD (Madry et al. 2018, arXiv:1706.06083): uniform random start, ``steps`` signed-gradient steps
  of size ``alpha``, projection onto the L∞ ball of radius ``eps`` ∩ [0, 1], last iterate returned.
- FGSM with random start (Wong et al. 2020, "Fast is better than free", arXiv:2001.03994):
  ``steps=1``, ``alpha=1.25·eps``.
- TRADES (Zhang et al. 2019, arXiv:1901.08573): ``loss="kl"``, maximising KL(p(x) ‖ p(x')) from a
  small Gaussian start (0.001·N(0, 1)) — the engine's loss gets the clean probabilities as context.
- Friendly PGD (Zhang et al. 2020, "Attacks which do not kill training make adversarial learning
  stronger", arXiv:2002.11242): ``early_stop=tau`` stops each sample ``tau`` steps after it is first
  misclassified (the engine's ``patience``).
- SmoothAdv / SmoothMix (``maximize_smoothed``): L2 steps on the soft smoothed classifier with fixed
  noise draws (Salman et al. 2019, arXiv:1906.04584; Jeong et al. 2021, arXiv:2111.09277).

Caller state: parameters get ``requires_grad=False`` during the attack and their flags, the
modules' modes and the BN buffers are restored; only the input is differentiated, so no
parameter ``.grad`` appears. ``bn="eval"`` runs the model in eval mode (stopped points are dropped
from the batch, exact there); ``bn="batch"`` uses batch statistics without updating the running
ones (AdvProp's auxiliary BN) and keeps the full batch in every forward.

Precision: the maximisers run with autocast switched off (``precision.float32_block``), so under
``--amp`` the attack's forwards and its input gradient stay float32; only the training forward on the
result runs in reduced precision.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.attacks.base import frozen_parameters
from shiftlab.attacks.engine import FixedStep, gradient_ascent
from shiftlab.attacks.losses import cross_entropy, kl_to_clean
from shiftlab.attacks.threat import L2Ops, LinfOps
from shiftlab.certify.soft import SoftSmoothed
from shiftlab.training.modifiers import auxiliary_batch_norm, eval_mode
from shiftlab.training.precision import float32_block

TRADES_SIGMA = 0.001
"""Standard deviation of TRADES' Gaussian start (Zhang et al. 2019)."""


@dataclass(frozen=True)
class InnerMax:
    """Settings of the inner maximiser (L∞).

    Args:
        eps: radius of the L∞ ball on [0, 1] images (0.1 for Fashion-MNIST).
        alpha: step size (default eps / 4).
        steps: number of gradient steps (7).
        start: "uniform" in the ball, "gaussian" (0.001·N(0, 1), TRADES) or "none".
        loss: "ce" (cross-entropy with the label) or "kl" (KL to the clean prediction, TRADES).
        early_stop: friendly-PGD τ; None runs all steps.
        bn: "eval" or "batch" (see the module docstring).
    """

    eps: float = 0.1
    alpha: float | None = None
    steps: int = 7
    start: Literal["uniform", "gaussian", "none"] = "uniform"
    loss: Literal["ce", "kl"] = "ce"
    early_stop: int | None = None
    bn: Literal["eval", "batch"] = "eval"

    def __post_init__(self) -> None:
        if not self.eps > 0:
            raise ValueError(f"eps must be positive, got {self.eps}")
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.alpha is not None and not self.alpha > 0:
            raise ValueError(f"alpha must be positive, got {self.alpha}")
        if self.early_stop is not None and self.early_stop < 0:
            raise ValueError(f"early-stop tau must be >= 0, got {self.early_stop}")

    @property
    def step_size(self) -> float:
        return self.alpha if self.alpha is not None else self.eps / 4


@dataclass
class Maximized:
    """The adversarial batch and the clean logits computed on the way (no grad, same BN mode)."""

    x_adv: torch.Tensor
    clean_logits: torch.Tensor


def _mode(model: nn.Module, bn: str) -> contextlib.AbstractContextManager[None]:
    return auxiliary_batch_norm(model) if bn == "batch" else eval_mode(model)


def _start(x: torch.Tensor, cfg: InnerMax, ops: LinfOps, generator: torch.Generator) -> torch.Tensor:
    if cfg.start == "uniform":
        return ops.random_init(x, generator)
    if cfg.start == "gaussian":
        return ops.gaussian_init(x, generator, TRADES_SIGMA)
    return x.clone()


def maximize(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: InnerMax,
             generator: torch.Generator) -> Maximized:
    """Run the inner maximiser. Shape: x N×C×H×W in [0, 1], y N → x_adv same shape, in the ball and [0, 1]."""
    x = x.detach()
    ops = LinfOps(cfg.eps)
    with frozen_parameters(model), _mode(model, cfg.bn), float32_block(x):
        with torch.no_grad():
            clean_logits = model(x)
        loss_fn, context = (kl_to_clean, F.softmax(clean_logits, dim=1)) if cfg.loss == "kl" else (cross_entropy, None)
        result = gradient_ascent(model, x, y, _start(x, cfg, ops, generator), ops, loss_fn, cfg.steps,
                                 FixedStep(cfg.step_size), context, patience=cfg.early_stop,
                                 compact=cfg.bn == "eval", keep_best=False)
    return Maximized(result.x_adv, clean_logits)


def maximize_smoothed(model: nn.Module, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor, eps: float | None,
                      step: float, steps: int) -> torch.Tensor:
    """The inner maximisation of SmoothAdv (Salman et al. 2019, arXiv:1906.04584) and SmoothMix (Jeong et
    al. 2021, arXiv:2111.09277): ``steps`` normalised-gradient L2 steps of length ``step`` from x (no
    random start) on the cross-entropy of the soft smoothed classifier with the fixed ``noise``
    (``certify.SoftSmoothed``), projected onto the L2 ball of radius ``eps`` ∩ [0, 1]; ``eps=None``
    leaves the steps unbounded (SmoothMix), the box still applies. Every point takes every step (no
    early stop), and the last iterate is returned.

    Shape: x N×C×H×W in [0, 1], y N, noise N×m×C×H×W (already scaled by sigma) → x_adv N×C×H×W.
    """
    x = x.detach()
    ops = L2Ops(eps if eps is not None else step * steps)
    soft = SoftSmoothed(model, noise.detach())
    with frozen_parameters(model), eval_mode(model), float32_block(x):
        result = gradient_ascent(soft, x, y, x.clone(), ops, cross_entropy, steps, FixedStep(step),
                                 patience=None, compact=False, keep_best=False)
    return result.x_adv
