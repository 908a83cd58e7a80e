"""PGD: projected gradient ascent on the cross-entropy from a random start, with restarts.

Madry, Makelov, Schmidt, Tsipras & Vladu 2018, "Towards deep learning models resistant to
adversarial attacks", arXiv:1706.06083.

Args (from ``ThreatModel``): norm (linf | l2), eps, steps (default 100), restarts (default 1),
step_size (default 2.5 * eps / steps). Each restart runs only on points not yet broken; restart r of
an image starts from its own stream's draw for ``("restart", r)``. Shape: N×C×H×W in [0, 1].

Example:
    >>> x_adv, broken = run_attack("pgd", model, x, y, ThreatModel("linf", 0.1, steps=10), rng)  # doctest: +SKIP
"""

from __future__ import annotations

import torch
from torch import nn

from shiftlab.attacks.base import ATTACKS, AttackMeta, image_streams
from shiftlab.attacks.engine import FixedStep, gradient_ascent
from shiftlab.attacks.losses import cross_entropy
from shiftlab.attacks.threat import Randomness, ThreatModel, norm_ops


@ATTACKS.register("pgd", meta=AttackMeta("projected gradient descent, random start and restarts",
                                         "Madry et al. 2018", "1706.06083"))
def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
        rng: Randomness) -> tuple[torch.Tensor, torch.Tensor]:
    streams = image_streams(rng, len(x))
    ops = norm_ops(threat)
    x_adv = x.clone()
    broken = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for restart in range(threat.restarts):
        todo = (~broken).nonzero().flatten()
        if len(todo) == 0:
            break
        xs = x[todo]
        start = ops.random_init(xs, streams.subset(todo), ("restart", restart))
        res = gradient_ascent(model, xs, y[todo], start, ops, cross_entropy, threat.steps, FixedStep(threat.alpha))
        x_adv[todo] = res.x_adv
        broken[todo] = res.broken
    return x_adv, broken
