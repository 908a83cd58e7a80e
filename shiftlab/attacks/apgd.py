"""APGD-CE and APGD-T: step-size-free PGD with momentum and checkpoint-based step halving.

Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", arXiv:2003.01690. Schedule as in the paper and fra31/auto-attack:
initial step 2·eps; checkpoints every k iterations with k starting at ⌈0.22·N_iter⌉ and shrinking
by 0.03·N_iter down to 0.06·N_iter; at a checkpoint the step of a point is halved (and the point
restarted from its best iterate) if the loss increased in at most 75 % of the last k steps, or if
the step was not halved at the last checkpoint and the best loss has not improved since;
momentum 0.75 (none on the first step). APGD-T maximises the targeted DLR loss towards each of the
``n_target_classes`` highest non-true logits, on the points still robust, the target ranks batched
in fixed waves (``attacks/targets.py``). Restart r of an image (or of an (image, target rank) pair)
starts from its own stream's draw for ``("restart", r)``.

Args (from ``ThreatModel``): norm, eps, steps (default 100), restarts (default 1),
n_target_classes (APGD-T, default 9). Shape: N×C×H×W in [0, 1].

Deviation: the oscillation count compares each loss with the previous one, the first with the
loss at the starting point (auto-attack compares the first with an unset zero entry).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from shiftlab.attacks.base import ATTACKS, AttackMeta, image_streams
from shiftlab.attacks.engine import RuleState, StepRule, gradient_ascent
from shiftlab.attacks.losses import LossFn, cross_entropy, targeted_dlr
from shiftlab.attacks.targets import WAVES, over_targets
from shiftlab.attacks.threat import NormOps, Randomness, ThreatModel, norm_ops
from shiftlab.core.seeding import ImageStreams

MOMENTUM = 0.75
RHO = 0.75


@dataclass
class APGDState(RuleState):
    step_size: torch.Tensor
    x_best: torch.Tensor
    grad_best: torch.Tensor
    loss_best: torch.Tensor
    loss_best_last_check: torch.Tensor
    reduced_last_check: torch.Tensor
    x_prev: torch.Tensor
    loss_hist: torch.Tensor  # N × (steps + 1), column 0 = loss at the start
    counter: int = 0
    k: int = 1


@dataclass
class APGDRule(StepRule):
    """The APGD step rule: momentum step, then step-size halving at checkpoints."""

    eps: float
    steps: int

    @property
    def k_start(self) -> int:
        return max(int(0.22 * self.steps), 1)

    @property
    def k_min(self) -> int:
        return max(int(0.06 * self.steps), 1)

    @property
    def k_decrease(self) -> int:
        return max(int(0.03 * self.steps), 1)

    def start(self, x_adv: torch.Tensor, loss: torch.Tensor, grad: torch.Tensor, steps: int) -> APGDState:
        n = len(x_adv)
        hist = torch.zeros(n, steps + 1, device=x_adv.device)
        hist[:, 0] = loss
        return APGDState(
            step_size=torch.full((n,), 2.0 * self.eps, device=x_adv.device),
            x_best=x_adv.clone(), grad_best=grad.clone(), loss_best=loss.clone(),
            loss_best_last_check=loss.clone(),
            reduced_last_check=torch.ones(n, dtype=torch.bool, device=x_adv.device),
            x_prev=x_adv.clone(), loss_hist=hist, k=self.k_start)

    def propose(self, i: int, x_adv: torch.Tensor, grad: torch.Tensor, x: torch.Tensor, ops: NormOps,
                state: RuleState) -> torch.Tensor:
        assert isinstance(state, APGDState)
        velocity = x_adv - state.x_prev
        state.x_prev = x_adv
        a = MOMENTUM if i > 0 else 1.0
        z = ops.project(ops.step(x_adv, grad, state.step_size), x)
        return ops.project(x_adv + a * (z - x_adv) + (1 - a) * velocity, x)

    def observe(self, i: int, x_adv: torch.Tensor, loss: torch.Tensor, grad: torch.Tensor,
                state: RuleState) -> tuple[torch.Tensor, torch.Tensor]:
        assert isinstance(state, APGDState)
        state.loss_hist[:, i + 1] = loss
        better = loss > state.loss_best
        state.x_best[better] = x_adv[better]
        state.grad_best[better] = grad[better]
        state.loss_best[better] = loss[better]
        state.counter += 1
        if state.counter < state.k:
            return x_adv, grad
        window = state.loss_hist[:, max(i + 1 - state.k, 0):i + 2]
        increases = (window[:, 1:] > window[:, :-1]).sum(1)
        oscillating = increases <= state.k * RHO
        stalled = ~state.reduced_last_check & (state.loss_best_last_check >= state.loss_best)
        reduce = oscillating | stalled
        state.reduced_last_check = reduce
        state.loss_best_last_check = state.loss_best.clone()
        state.step_size = torch.where(reduce, state.step_size / 2, state.step_size)
        x_adv = torch.where(reduce.view(-1, *([1] * (x_adv.dim() - 1))), state.x_best, x_adv)
        grad = torch.where(reduce.view(-1, *([1] * (grad.dim() - 1))), state.grad_best, grad)
        state.counter = 0
        state.k = max(state.k - self.k_decrease, self.k_min)
        return x_adv, grad


def apgd_run(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel, rng: ImageStreams,
             loss_fn: LossFn, target: torch.Tensor | None = None,
             groups: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """APGD with ``threat.restarts`` random restarts, each on the points not yet broken.

    ``rng``: one stream per point; restart r of point j starts from stream j's draw for
    ``("restart", r)``. ``groups`` (optional, per point): points of one group stop together once one
    is broken, and a restart skips every group already broken (the target copies of one image).
    """
    ops = norm_ops(threat)
    x_adv = x.clone()
    broken = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for restart in range(threat.restarts):
        done = broken if groups is None else torch.isin(groups, groups[broken])
        todo = (~done).nonzero().flatten()
        if len(todo) == 0:
            break
        xs = x[todo]
        start = ops.random_init(xs, rng.subset(todo), ("restart", restart))
        res = gradient_ascent(model, xs, y[todo], start, ops, loss_fn, threat.steps,
                              APGDRule(threat.eps, threat.steps), None if target is None else target[todo],
                              groups=None if groups is None else groups[todo])
        x_adv[todo] = res.x_adv
        broken[todo] = res.broken
    return x_adv, broken


@ATTACKS.register("apgd-ce", meta=AttackMeta("auto-PGD on cross-entropy", "Croce & Hein 2020", "2003.01690"))
def apgd_ce(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
            rng: Randomness) -> tuple[torch.Tensor, torch.Tensor]:
    return apgd_run(model, x, y, threat, image_streams(rng, len(x)), cross_entropy)


def apgd_targeted(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
                  rng: Randomness, waves: tuple[int, ...] = WAVES) -> tuple[torch.Tensor, torch.Tensor]:
    """APGD-T over the top ``n_target_classes`` non-true classes; ``waves=(1,)`` runs them one by one."""
    with torch.no_grad():
        logits = model(x)
    n_targets = min(threat.n_target_classes, logits.shape[1] - 1)

    def attack(owner: torch.Tensor, target: torch.Tensor,
               streams: ImageStreams) -> tuple[torch.Tensor, torch.Tensor]:
        return apgd_run(model, x[owner], y[owner], threat, streams, targeted_dlr, target, owner)

    return over_targets(attack, x, logits, n_targets, image_streams(rng, len(x)), waves)


@ATTACKS.register("apgd-t", meta=AttackMeta("auto-PGD on the targeted DLR loss, top non-true classes",
                                            "Croce & Hein 2020", "2003.01690", targeted=True))
def apgd_t(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
           rng: Randomness) -> tuple[torch.Tensor, torch.Tensor]:
    return apgd_targeted(model, x, y, threat, rng)
