"""Sanity checks run before attacking (STYLE rule 11; after auto-attack's ``checks.py``).

Gradient masking makes weak attacks look strong (Athalye, Carlini & Wagner 2018,
arXiv:1802.00420; Carlini et al. 2019, arXiv:1902.06705): a randomised forward pass, softmax
outputs fed to a logit loss, or zero / NaN input gradients each invalidate a white-box evaluation,
so they are detected and reported with the result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from shiftlab.attacks.base import attack_mode, logits_and_grad
from shiftlab.attacks.losses import cross_entropy
from shiftlab.core.errors import UserError


@dataclass
class SanityReport:
    """Outcome of the pre-attack checks: each flag True means the check passed."""

    deterministic: bool = True
    outputs_logits: bool = True
    gradients_nonzero: bool = True
    gradients_finite: bool = True
    enough_classes: bool = True
    zero_grad_fraction: float = 0.0
    num_classes: int = 0
    messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_model(model: nn.Module, x: torch.Tensor, y: torch.Tensor, n_target_classes: int = 9,
                targeted: bool = False) -> SanityReport:
    """Run the checks on a small batch; raises UserError only when an attack cannot run at all."""
    report = SanityReport()
    with attack_mode(model):
        with torch.no_grad():
            a, b = model(x), model(x)
        report.num_classes = int(a.shape[1])
        if not torch.allclose(a, b, rtol=1e-5, atol=1e-6):
            report.deterministic = False
            report.messages.append("the model is randomised (two forward passes differ): use EOT attacks")
        rows = a.sum(1)
        if bool((a >= 0).all()) and bool(torch.allclose(rows, torch.ones_like(rows), atol=1e-4)):
            report.outputs_logits = False
            report.messages.append("the model outputs look like probabilities (rows are non-negative and sum "
                                   "to 1): attacks expect logits")
        _, _, grad = logits_and_grad(model, x, y, cross_entropy)
    zero = (grad.flatten(1).abs().amax(1) == 0).float()
    report.zero_grad_fraction = float(zero.mean())
    if report.zero_grad_fraction > 0.5:
        report.gradients_nonzero = False
        report.messages.append(f"the input gradient is exactly zero for {report.zero_grad_fraction:.0%} of the "
                               "points (gradient masking?): trust only the black-box attack")
    if not bool(torch.isfinite(grad).all()):
        report.gradients_finite = False
        report.messages.append("the input gradient contains NaN or inf")
    if targeted:
        if report.num_classes < 4:
            raise UserError(f"targeted DLR attacks need at least 4 classes, the model has {report.num_classes}; "
                            "use apgd-ce or square")
        if n_target_classes > report.num_classes - 1:
            report.enough_classes = False
            report.messages.append(f"n_target_classes={n_target_classes} but only {report.num_classes - 1} "
                                   "non-true classes exist; using all of them")
    return report
