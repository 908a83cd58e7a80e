"""FAB-T: the targeted fast adaptive boundary attack (minimal-norm, then checked against eps).

Croce & Hein 2020, "Minimally distorted adversarial examples with a fast adaptive boundary
attack", arXiv:1907.02044. Each iteration linearises f_y − f_t at the current point, projects both
the current point and the original image onto that hyperplane ∩ [0, 1] (``NormOps.hyperplane_step``),
takes a convex combination biased towards the original (α ≤ α_max = 0.1) with overshoot η = 1.05,
and when it finds an adversarial point, records it if smaller and pulls back towards the original
by β = 0.9. A point counts as broken only if its smallest adversarial perturbation is within eps.
Targets: the ``n_target_classes`` highest non-true logits, each tried on the points still robust.

Args (from ``ThreatModel``): norm, eps, steps (default 100), restarts (default 1; restarts after
the first start at a random point), n_target_classes (default 9). Shape: N×C×H×W in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from shiftlab.attacks.base import ATTACKS, AttackMeta
from shiftlab.attacks.losses import target_ranks
from shiftlab.attacks.threat import NormOps, ThreatModel, norm_ops

ALPHA_MAX = 0.1
ETA = 1.05
BETA = 0.9


def _boundary_gap(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                  target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(f_y − f_t, its gradient) at ``x``, without touching parameter gradients."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        gap = logits.gather(1, y[:, None]).squeeze(1) - logits.gather(1, target[:, None]).squeeze(1)
        (grad,) = torch.autograd.grad(gap.sum(), x)
    return gap.detach(), grad.detach()


def fab_single(model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor, ops: NormOps,
               steps: int, start: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One FAB run towards ``target``: (smallest adversarial point found, its norm; inf if none)."""
    n = len(x)
    x0 = x.flatten(1)
    x1 = start.flatten(1).clone()
    best = x0.clone()
    best_norm = torch.full((n,), float("inf"), device=x.device)
    for _ in range(steps):
        gap, grad = _boundary_gap(model, x1.view_as(x), y, target)
        w = grad.flatten(1)
        b = (w * x1).sum(1) - gap  # linearised boundary: w·z = b
        both = ops.hyperplane_step(torch.cat([x1, x0]), torch.cat([w, w]), torch.cat([b, b]))
        d1, d2 = both[:n], both[n:]
        a1 = ops.norm_of(d1).clamp_min(1e-8)
        a2 = ops.norm_of(d2).clamp_min(1e-8)
        alpha = (a1 / (a1 + a2)).clamp(0.0, ALPHA_MAX)[:, None]
        x1 = ops.clip_box((x1 + ETA * d1) * (1 - alpha) + (x0 + ETA * d2) * alpha)
        with torch.no_grad():
            adv = model(x1.view_as(x)).argmax(1) != y
        if adv.any():
            dist = ops.norm_of(x1 - x0)
            smaller = adv & (dist < best_norm)
            best[smaller] = x1[smaller]
            best_norm[smaller] = dist[smaller]
            x1[adv] = x0[adv] + (x1[adv] - x0[adv]) * BETA
    return best.view_as(x), best_norm


@ATTACKS.register("fab-t", meta=AttackMeta("targeted fast adaptive boundary attack (minimal norm)",
                                           "Croce & Hein 2020", "1907.02044", targeted=True))
def fab_t(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    ops = norm_ops(threat)
    with torch.no_grad():
        logits = model(x)
    n_targets = min(threat.n_target_classes, logits.shape[1] - 1)
    x_adv = x.clone()
    broken = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for rank in range(2, n_targets + 2):
        for restart in range(threat.restarts):
            todo = (~broken).nonzero().flatten()
            if len(todo) == 0:
                return x_adv, broken
            xs = x[todo]
            start = xs if restart == 0 else ops.random_init(xs, generator)
            found, dist = fab_single(model, xs, y[todo], target_ranks(logits[todo], rank), ops, threat.steps, start)
            ok = dist <= threat.eps
            x_adv[todo[ok]] = found[ok]
            broken[todo[ok]] = True
    return x_adv, broken
