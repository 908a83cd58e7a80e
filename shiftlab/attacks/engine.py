"""The one gradient-ascent loop of shiftlab (STYLE rule 4): evaluation attacks (FGSM, PGD, APGD-CE,
APGD-T) and adversarial training's inner maximisation (``train/maximizers.py``) all run here.

The engine owns the loss, the gradient, the per-sample bookkeeping (first misclassifying point,
best-loss point) and the active set. A ``StepRule`` decides only how to move (``propose``) and may
react to the new losses (``observe``); all geometry goes through ``NormOps``.

Per-sample stopping (keyword options, defaults = evaluation):
- ``patience``: a point stops moving ``patience`` misclassified iterates after it is first
  misclassified (0: at once, the evaluation attacks and friendly PGD with τ = 0; τ > 0: friendly
  PGD, Zhang et al. 2020, arXiv:2002.11242); ``None`` never stops (Madry-style training PGD).
- ``compact``: a stopped point is removed from the batch, which is exact only when the model
  treats samples independently (eval mode). ``False`` keeps the full batch in every forward (batch
  statistics, AdvProp's auxiliary BN) and freezes stopped points by masking their step.
- ``keep_best``: unbroken points return their best-loss iterate (evaluation); ``False`` returns each
  point's last iterate (training) and skips the final forward.
- ``groups``: points with the same group id stop together as soon as one of them stops (batched
  targets: the copies of one image aimed at different target classes, ``attacks/targets.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import nn

from shiftlab.attacks.base import logits_and_grad
from shiftlab.attacks.losses import LossFn
from shiftlab.attacks.threat import NormOps


@dataclass
class RuleState:
    """Per-sample tensors of a step rule (first dimension = active points); compacted by the engine."""

    def keep(self, mask: torch.Tensor) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                setattr(self, f.name, value[mask])


class StepRule:
    """How the engine moves: ``propose`` the next iterate; optionally ``observe`` its loss."""

    def start(self, x_adv: torch.Tensor, loss: torch.Tensor, grad: torch.Tensor, steps: int) -> RuleState:
        return RuleState()

    def propose(self, i: int, x_adv: torch.Tensor, grad: torch.Tensor, x: torch.Tensor, ops: NormOps,
                state: RuleState) -> torch.Tensor:
        raise NotImplementedError

    def observe(self, i: int, x_adv: torch.Tensor, loss: torch.Tensor, grad: torch.Tensor,
                state: RuleState) -> tuple[torch.Tensor, torch.Tensor]:
        return x_adv, grad


@dataclass
class FixedStep(StepRule):
    """x ← Π(x + α · steepest-ascent direction) with a constant α (FGSM, BIM, PGD)."""

    alpha: float

    def propose(self, i: int, x_adv: torch.Tensor, grad: torch.Tensor, x: torch.Tensor, ops: NormOps,
                state: RuleState) -> torch.Tensor:
        return ops.project(ops.step(x_adv, grad, self.alpha), x)


@dataclass
class EngineResult:
    """x_adv (see ``gradient_ascent``) and the mask of points misclassified at some evaluated iterate."""

    x_adv: torch.Tensor
    broken: torch.Tensor
    best_loss: torch.Tensor = field(default_factory=lambda: torch.empty(0))


def gradient_ascent(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_init: torch.Tensor, ops: NormOps,
                    loss_fn: LossFn, steps: int, rule: StepRule, target: torch.Tensor | None = None, *,
                    patience: int | None = 0, compact: bool = True, keep_best: bool = True,
                    groups: torch.Tensor | None = None) -> EngineResult:
    """Maximise ``loss_fn`` over the threat set from ``x_init`` for ``steps`` iterations.

    ``target`` is the per-sample context handed to ``loss_fn`` (target classes of APGD-T, clean
    probabilities of the TRADES KL); it follows the active set. Returns per point: the iterate at
    which it stopped (with ``patience=0``: the first misclassifying one), else the best-loss iterate
    (``keep_best``) or the last one. See the module docstring for ``patience``/``compact``/``keep_best``/
    ``groups`` (which needs ``compact``).

    Shape: x, x_init N×C×H×W in [0, 1]; y (N,); target (N, ...). The model must already be in the
    mode the caller wants (``attack_mode`` for evaluation) with parameters not requiring grad.
    """
    assert groups is None or compact, "groups stop together by leaving the batch: needs compact=True"
    n = len(x)
    out_x = x_init.clone()
    best_loss = torch.full((n,), float("-inf"), device=x.device)
    broken = torch.zeros(n, dtype=torch.bool, device=x.device)
    idx = torch.arange(n, device=x.device)
    xs, ys, ts, gs, x_adv = x, y, target, groups, x_init
    left = torch.full((n,), patience if patience is not None else 0, device=x.device)  # misclassified steps left
    frozen = torch.zeros(n, dtype=torch.bool, device=x.device)  # stopped but kept (compact=False)
    logits, loss, grad = logits_and_grad(model, x_adv, ys, loss_fn, ts)
    state = rule.start(x_adv, loss, grad, steps)
    for i in range(steps + 1):
        if i > 0:
            proposed = rule.propose(i - 1, x_adv, grad, xs, ops, state)
            x_adv = proposed if compact else torch.where(frozen.view(-1, *([1] * (x.dim() - 1))), x_adv, proposed)
            if i == steps and not keep_best:
                break
            if i < steps:
                logits, loss, grad = logits_and_grad(model, x_adv, ys, loss_fn, ts)
            else:  # last iterate: no gradient needed
                with torch.no_grad():
                    logits = model(x_adv)
                    loss = loss_fn(logits, ys, ts)
        if keep_best:
            improved = (loss > best_loss[idx]) & ~frozen
            best_loss[idx[improved]] = loss[improved]
            out_x[idx[improved]] = x_adv[improved]
        hit = logits.argmax(1) != ys
        broken[idx[hit]] = True
        if patience is not None and hit.any():
            left = torch.where(hit, left - 1, left)
            stop = left < 0
            if gs is not None:
                stop = torch.isin(gs, gs[stop])
            if compact:
                out_x[idx[stop]] = x_adv[stop]
                keep = ~stop
                idx, xs, ys, x_adv, grad, loss = idx[keep], xs[keep], ys[keep], x_adv[keep], grad[keep], loss[keep]
                left, frozen = left[keep], frozen[keep]
                ts = ts[keep] if ts is not None else None
                gs = gs[keep] if gs is not None else None
                state.keep(keep)
            else:
                frozen = stop
            if bool(stop.all()):
                break
        if 0 < i < steps:
            x_adv, grad = rule.observe(i - 1, x_adv, loss, grad, state)
    final = frozen if keep_best else torch.ones_like(frozen)
    out_x[idx[final]] = x_adv[final]
    return EngineResult(out_x, broken, best_loss)
