"""FGSM: one steepest-ascent step of length eps on the cross-entropy.

Goodfellow, Shlens & Szegedy 2015, "Explaining and harnessing adversarial examples",
arXiv:1412.6572. For L2 the step is along the normalised gradient (the L2 "fast gradient method").

Args (from ``ThreatModel``): norm, eps. Shape: N×C×H×W in [0, 1].

Example:
    >>> from shiftlab.attacks import ThreatModel, run_attack
    >>> x_adv, broken = run_attack("fgsm", model, x, y, ThreatModel("linf", 0.1), rng)  # doctest: +SKIP
"""

from __future__ import annotations

import torch
from torch import nn

from shiftlab.attacks.base import ATTACKS, AttackMeta
from shiftlab.attacks.engine import FixedStep, gradient_ascent
from shiftlab.attacks.losses import cross_entropy
from shiftlab.attacks.threat import Randomness, ThreatModel, norm_ops


@ATTACKS.register("fgsm", meta=AttackMeta("fast gradient sign method (one step)", "Goodfellow et al. 2015",
                                          "1412.6572"))
def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
         rng: Randomness) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic: ``rng`` is accepted for the common attack signature and not used."""
    res = gradient_ascent(model, x, y, x, norm_ops(threat), cross_entropy, 1, FixedStep(threat.eps))
    return res.x_adv, res.broken
