"""Worst-case ensembles over the shrinking set of still-robust points (AutoAttack).

Croce & Hein 2020, arXiv:2003.01690. Each attack of the list runs only on the points every
earlier attack failed to break; a point's result is the first attack that broke it. An ensemble is
a list of ``(attack_name, budget overrides)`` pairs applied to the caller's ``ThreatModel``. Each
attack of the list draws from the images' streams derived by its name (a repeated name also by its
occurrence), so the attacks' randomness is independent and per image.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from shiftlab.attacks.base import (
    ATTACKS,
    assert_in_threat_set,
    attack_mode,
    image_streams,
    predict,
    run_attack,
)
from shiftlab.attacks.threat import Randomness, ThreatModel
from shiftlab.core.registry import Registry

EnsembleSpec = tuple[tuple[str, tuple[tuple[str, int], ...]], ...]



@dataclass(frozen=True, slots=True)
class EnsembleMeta:
    """Registry metadata of an ensemble."""

    description: str
    paper: str = ""


ENSEMBLES: Registry[EnsembleSpec, EnsembleMeta] = Registry("attack ensemble")
ENSEMBLES.add("autoattack-standard", (
    ("apgd-ce", (("steps", 100), ("restarts", 1))),
    ("apgd-t", (("steps", 100), ("restarts", 1), ("n_target_classes", 9))),
    ("fab-t", (("steps", 100), ("restarts", 1), ("n_target_classes", 9))),
    ("square", (("n_queries", 5000),)),
), EnsembleMeta("AutoAttack, standard version at its official budgets (APGD-CE, APGD-T, FAB-T, Square)",
                "Croce & Hein 2020, arXiv:2003.01690"))
ENSEMBLES.add("autoattack-fast", (
    ("apgd-ce", (("steps", 100), ("restarts", 1))),
    ("apgd-t", (("steps", 100), ("restarts", 1), ("n_target_classes", 9))),
), EnsembleMeta("APGD-CE then APGD-T (the two gradient attacks of AutoAttack)",
                "Croce & Hein 2020, arXiv:2003.01690"))


def ensemble_spec(name: str) -> EnsembleSpec:
    """A registered ensemble, or a single registered attack as an ensemble of one (its budgets unchanged)."""
    if name in ENSEMBLES:
        return ENSEMBLES.get(name)
    ATTACKS.entry(name)  # unknown names raise a UserError listing close matches
    return ((name, ()),)


@dataclass
class EnsembleResult:
    """Per-point outcome: adversarial images, clean correctness, robustness, and the breaking attack;
    ``seconds``: wall time of each attack that ran."""

    x_adv: torch.Tensor
    clean_correct: torch.Tensor
    robust: torch.Tensor
    broken_by: list[str | None]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def robust_accuracy(self) -> float:
        return float(self.robust.float().mean()) if len(self.robust) else 0.0


def run_ensemble(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
                 spec: EnsembleSpec, rng: Randomness, batch_size: int = 256,
                 budgets: dict[str, Any] | None = None) -> EnsembleResult:
    """Run the attacks of ``spec`` in order on the shrinking robust set of (x, y).

    Args:
        rng: one random stream per image of ``x`` (``ImageStreams.for_images(seed, task_key, indices)``);
            a ``torch.Generator`` is converted with ``ImageStreams.from_generator``. Attack k of ``spec``
            uses the streams derived by its name, so no number depends on ``batch_size``.
        budgets: optional overrides applied on top of every step's budgets (e.g. fewer Square queries).
    """
    streams = image_streams(rng, len(x))
    with attack_mode(model, x):
        clean = predict(model, x, batch_size) == y
        robust = clean.clone()
        x_adv = x.clone()
        broken_by: list[str | None] = [None] * len(x)
        seconds: dict[str, float] = {}
        seen: list[str] = []
        for name, overrides in spec:
            tag = name if name not in seen else (name, seen.count(name))
            seen.append(name)
            if not robust.any():
                break
            t = dataclasses.replace(threat, **{**dict(overrides), **(budgets or {})})
            start = time.perf_counter()
            xa, broken = run_attack(name, model, x, y, t, streams.derive(tag), batch_size, active=robust)
            seconds[name] = time.perf_counter() - start
            x_adv[broken] = xa[broken]
            for i in broken.nonzero().flatten().tolist():
                broken_by[i] = name
            robust &= ~broken
        final = predict(model, x_adv, batch_size) == y
    assert torch.equal(final & clean, robust), "a point reported broken is classified correctly"
    assert_in_threat_set(x_adv, x, threat)
    return EnsembleResult(x_adv, clean, robust, broken_by, seconds)
