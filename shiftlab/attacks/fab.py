"""FAB-T: the targeted fast adaptive boundary attack (minimal-norm, then checked against eps).

Croce & Hein 2020, "Minimally distorted adversarial examples with a fast adaptive boundary
attack", arXiv:1907.02044. Each iteration linearises f_y − f_t at the current point, projects both
the current point and the original image onto that hyperplane ∩ [0, 1] (``NormOps.hyperplane_step``),
takes a convex combination biased towards the original (α ≤ α_max = 0.1) with overshoot η = 1.05,
and when it finds an adversarial point, records it if smaller and pulls back towards the original
by β = 0.9. A point counts as broken only if its smallest adversarial perturbation is within eps,
so a point stops as soon as it has one (what it would find later is only smaller).
Targets: the ``n_target_classes`` highest non-true logits, each tried on the points still robust, the
ranks batched in fixed waves (``attacks/targets.py``).

Args (from ``ThreatModel``): norm, eps, steps (default 100), restarts (default 1; restart r ≥ 1 of an
(image, target rank) pair starts at its stream's random point for ``("restart", r)``),
n_target_classes (default 9). Shape: N×C×H×W in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from shiftlab.attacks.base import ATTACKS, AttackMeta, image_streams
from shiftlab.attacks.targets import WAVES, over_targets
from shiftlab.attacks.threat import NormOps, Randomness, ThreatModel, norm_ops
from shiftlab.core.seeding import ImageStreams

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
               steps: int, start: torch.Tensor, eps: float = 0.0,
               groups: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One FAB run towards ``target``: (smallest adversarial point found, its norm; inf if none).

    A point whose smallest adversarial perturbation is within ``eps`` leaves the batch (with the
    other points of its ``groups`` id, if given); ``eps=0`` runs every point for all ``steps``.
    """
    n, shape = len(x), x.shape[1:]
    x0_all = x.flatten(1)
    best = x0_all.clone()
    best_norm = torch.full((n,), float("inf"), device=x.device)
    idx = torch.arange(n, device=x.device)
    gs = idx if groups is None else groups
    x0, x1, ys, ts = x0_all, start.flatten(1).clone(), y, target
    for _ in range(steps):
        gap, grad = _boundary_gap(model, x1.view(-1, *shape), ys, ts)
        w = grad.flatten(1)
        b = (w * x1).sum(1) - gap  # linearised boundary: w·z = b
        m = len(x1)
        both = ops.hyperplane_step(torch.cat([x1, x0]), torch.cat([w, w]), torch.cat([b, b]))
        d1, d2 = both[:m], both[m:]
        a1 = ops.norm_of(d1).clamp_min(1e-8)
        a2 = ops.norm_of(d2).clamp_min(1e-8)
        alpha = (a1 / (a1 + a2)).clamp(0.0, ALPHA_MAX)[:, None]
        x1 = ops.clip_box((x1 + ETA * d1) * (1 - alpha) + (x0 + ETA * d2) * alpha)
        with torch.no_grad():
            adv = model(x1.view(-1, *shape)).argmax(1) != ys
        if not adv.any():
            continue
        dist = ops.norm_of(x1 - x0)
        smaller = adv & (dist < best_norm[idx])
        best[idx[smaller]] = x1[smaller]
        best_norm[idx[smaller]] = dist[smaller]
        x1 = torch.where(adv[:, None], x0 + (x1 - x0) * BETA, x1)
        done = best_norm[idx] <= eps
        if done.any():
            keep = ~torch.isin(gs, gs[done])
            idx, gs, x0, x1, ys, ts = idx[keep], gs[keep], x0[keep], x1[keep], ys[keep], ts[keep]
            if len(idx) == 0:
                break
    return best.view_as(x), best_norm


def fab_targeted(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
                 rng: Randomness, waves: tuple[int, ...] = WAVES) -> tuple[torch.Tensor, torch.Tensor]:
    """FAB-T over the top ``n_target_classes`` non-true classes; ``waves=(1,)`` runs them one by one."""
    ops = norm_ops(threat)
    with torch.no_grad():
        logits = model(x)
    n_targets = min(threat.n_target_classes, logits.shape[1] - 1)

    def attack(owner: torch.Tensor, target: torch.Tensor,
               streams: ImageStreams) -> tuple[torch.Tensor, torch.Tensor]:
        x_adv = x[owner]
        broken = torch.zeros(len(owner), dtype=torch.bool, device=x.device)
        for restart in range(threat.restarts):
            todo = (~torch.isin(owner, owner[broken])).nonzero().flatten()
            if len(todo) == 0:
                break
            xs = x[owner[todo]]
            start = xs if restart == 0 else ops.random_init(xs, streams.subset(todo), ("restart", restart))
            found, dist = fab_single(model, xs, y[owner[todo]], target[todo], ops, threat.steps, start,
                                     threat.eps, owner[todo])
            ok = dist <= threat.eps
            x_adv[todo[ok]] = found[ok]
            broken[todo[ok]] = True
        return x_adv, broken

    return over_targets(attack, x, logits, n_targets, image_streams(rng, len(x)), waves)


@ATTACKS.register("fab-t", meta=AttackMeta("targeted fast adaptive boundary attack (minimal norm)",
                                           "Croce & Hein 2020", "1907.02044", targeted=True))
def fab_t(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
          rng: Randomness) -> tuple[torch.Tensor, torch.Tensor]:
    return fab_targeted(model, x, y, threat, rng)
