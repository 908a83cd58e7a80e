"""The adversarial suite: robust accuracy per (attack or ensemble, norm, eps), resumable per batch.

Attacks are those of ``shiftlab.attacks`` (a single attack or an ensemble such as
``autoattack-standard``, Croce & Hein 2020, arXiv:2003.01690). The summary checks the result for
signs of a broken evaluation after Carlini et al. 2019 (arXiv:1902.06705) and Tramèr et al. 2020
(arXiv:2002.08347): robust accuracy must not increase with eps, must reach ≈ 0 at a very large
eps, must not exceed clean accuracy, and a black-box attack must not beat the white-box ones. A
check that the run cannot test (one budget only, no black-box attack) is stored as not applicable.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from shiftlab.attacks import ATTACKS, ENSEMBLES, Norm, ThreatModel, check_model, ensemble_spec, run_ensemble
from shiftlab.core.errors import UserError
from shiftlab.core.identity import AttackPoint, Summary, eps_display
from shiftlab.core.seeding import ImageStreams
from shiftlab.evaluation.context import EvalContext
from shiftlab.evaluation.flags import Flag, parse_budgets, parse_choice, parse_names
from shiftlab.evaluation.suite import SUITES, Suite, SuiteMeta, Task, TaskResult
from shiftlab.models.precision import float32_model
from shiftlab.store import TaskRow

SUITE = "adversarial"
DEFAULT_ATTACKS = ("apgd-ce",)
SANITY_ATTACK = "apgd-ce"
SANITY_STEPS = 20
MONOTONE_TOL = 0.005
LARGE_EPS_MAX_ACC = 0.02
BLACK_BOX_MARGIN = 0.02
NOT_APPLICABLE = float("nan")
ATTACK_BLOCK = 256  # images per resumable unit; each image's randomness is its own stream (any batch size)
SANITY_IMAGES = 64  # the pre-attack checks run on the first images of the test set


def check_attack(name: str) -> object:
    return ensemble_spec(name)


NORM = Flag("norm", "threat model norm: linf or l2", parse_choice([n.value for n in Norm], "--norm"), metavar="NORM")
EPS = Flag("eps", "comma-separated budgets, e.g. 0.05,0.1 or 8/255", parse_budgets, metavar="LIST")
ATTACK = Flag("attack", "attack or ensemble name (repeatable; see `shiftlab list attacks`)",
              parse_names(check_attack, "--attack"), repeatable=True, metavar="NAME")


@dataclass(frozen=True)
class AdversarialOptions:
    """The threat model (norm and budgets) and the attacks to run."""

    norm: str = "linf"
    eps: tuple[float, ...] = ()
    attack: tuple[str, ...] | None = None
    FLAGS = (NORM, EPS, ATTACK)

    def __post_init__(self) -> None:
        if self.norm == "linf" and any(e > 1 for e in self.eps):
            raise UserError(f"--eps: a linf budget above 1 is meaningless for [0, 1] images, got {max(self.eps):g}; "
                            "write e.g. 8/255")


def large_eps(norm: Norm, ctx: EvalContext) -> float:
    """An eps at which every image can be turned into any other: 1 (Linf) or the box diagonal (L2)."""
    info = ctx.data.info
    if norm is Norm.LINF:
        return 1.0
    return float(math.sqrt(info.channels * info.image_size[0] * info.image_size[1]))


def attack_task(ctx: EvalContext, point: AttackPoint) -> Task:
    spec = ensemble_spec(point.attack)
    budgets = {k: int(v) for k, v in point.budgets}
    params: dict[str, Any] = {
        "attack": point.attack, "norm": point.norm, "eps": point.eps, "eps_display": eps_display(point.eps),
        "budgets": {name: dict(over) | budgets for name, over in spec}, "large_eps_check": bool(point.budgets),
        "limit": ctx.run.limit, "n": len(ctx.data),
    }
    return Task(point, params, attack_runner(point))


def attack_runner(point: AttackPoint) -> Callable[[EvalContext], TaskResult]:
    def run(ctx: EvalContext) -> TaskResult:
        started = time.perf_counter()
        spec = ensemble_spec(point.attack)
        budgets = {k: int(v) for k, v in point.budgets}
        threat = ThreatModel(Norm(point.norm), point.eps)
        targeted = any(ATTACKS.meta(name).targeted for name, _ in spec)
        robust: list[bool] = []
        clean: list[bool] = []
        broken_by: list[str | None] = []
        model = float32_model(ctx.model)  # input gradients never in half precision, even under --amp
        x0, y0 = ctx.images(0, min(SANITY_IMAGES, len(ctx.data)))
        sanity = check_model(model, x0, y0, threat.n_target_classes, targeted).to_dict()

        def compute(b: int, start: int, stop: int) -> dict[str, Any]:
            x, y = ctx.images(start, stop)
            rng = ImageStreams.for_images(ctx.run.seed, point.key(), torch.arange(start, stop))
            res = run_ensemble(model, x, y, threat, spec, rng, ctx.run.batch_size, budgets)
            return {"robust": res.robust.tolist(), "clean": res.clean_correct.tolist(), "broken_by": res.broken_by}

        for block in ctx.stored_blocks(point, ATTACK_BLOCK, compute):
            robust += block["robust"]
            clean += block["clean"]
            broken_by += block["broken_by"]
        n = len(robust)
        counts: dict[str, int] = defaultdict(int)
        for attack in broken_by:
            if attack is not None:
                counts[attack] += 1
        metrics = {"robust_accuracy": sum(robust) / max(n, 1), "clean_accuracy": sum(clean) / max(n, 1),
                   "n": float(n), "seconds": time.perf_counter() - started}
        metrics |= {f"broken_by/{name}": float(counts.get(name, 0)) for name, _ in spec}
        return TaskResult(metrics, {"breakdown": {"broken_by": dict(counts), "robust": int(sum(robust)),
                                                  "clean_correct": int(sum(clean)), "n": n},
                                    "sanity": sanity or {}})

    return run


def build_adversarial(ctx: EvalContext, opts: AdversarialOptions) -> list[Task]:
    if not opts.eps:
        raise UserError("the adversarial suite needs at least one --eps (e.g. --eps 0.1 or --eps 8/255)")
    attacks = opts.attack or DEFAULT_ATTACKS
    points = [AttackPoint(a, opts.norm, eps) for a in attacks for eps in opts.eps]
    big = large_eps(Norm(opts.norm), ctx)
    if big not in opts.eps or SANITY_ATTACK not in attacks:
        points.append(AttackPoint(SANITY_ATTACK, opts.norm, big, (("steps", SANITY_STEPS),)))
    return [attack_task(ctx, p) for p in points]


def is_black_box(attack: str) -> bool:
    return all(ATTACKS.meta(name).black_box for name, _ in ensemble_spec(attack))


def summarize_adversarial(ctx: EvalContext, opts: AdversarialOptions,
                          rows: list[TaskRow]) -> list[tuple[Summary, TaskResult]]:
    points = [(r, r.id.task) for r in rows if isinstance(r.id.task, AttackPoint)]
    if not points:
        return []
    curves: dict[str, list[list[float]]] = defaultdict(list)
    flags: list[str] = []
    checks: dict[str, bool] = {"robust_le_clean": True, "pre_attack": True}
    for r, p in points:
        m = r.metrics
        if not p.budgets:
            curves[f"{p.attack}/{p.norm}"].append([p.eps, float(m["robust_accuracy"])])
        if m["robust_accuracy"] > m["clean_accuracy"] + 1e-9:
            checks["robust_le_clean"] = False
            flags.append(f"{p.label()}: robust accuracy {m['robust_accuracy']:.4f} exceeds clean accuracy")
        for msg in (r.artifacts.get("sanity") or {}).get("messages", []):
            flags.append(f"{p.label()}: {msg}")
            checks["pre_attack"] = False
        if p.budgets:
            ok = m["robust_accuracy"] <= LARGE_EPS_MAX_ACC
            checks["large_eps_zero"] = checks.get("large_eps_zero", True) and ok
            if not ok:
                flags.append(f"{p.label()}: robust accuracy {m['robust_accuracy']:.4f} at eps={p.eps:g} "
                             "(the whole image box) should be ≈ 0: gradient masking or a broken attack")
        broken_sq = m.get("broken_by/square", 0.0)
        if broken_sq > BLACK_BOX_MARGIN * max(m["n"], 1) and not is_black_box(p.attack):
            checks["black_box_weaker"] = False
            flags.append(f"{p.label()}: Square broke {int(broken_sq)} points the white-box attacks missed: "
                         "a sign of gradient masking")
    monotone: bool | None = None
    for name, pts in curves.items():
        if len(pts) < 2:
            continue
        pts.sort()
        ok = all(b[1] <= a[1] + MONOTONE_TOL for a, b in zip(pts, pts[1:], strict=False))
        monotone = ok if monotone is None else monotone and ok
        if not ok:
            flags.append(f"{name}: robust accuracy increases with eps {pts}: the attack is not converging")
    by_point: dict[tuple[str, float], dict[str, float]] = defaultdict(dict)
    for r, p in points:
        if not p.budgets:
            by_point[(p.norm, p.eps)][p.attack] = r.metrics["robust_accuracy"]
    for (norm, eps), accs in by_point.items():
        white = [v for a, v in accs.items() if not is_black_box(a)]
        black = [v for a, v in accs.items() if is_black_box(a)]
        if white and black:
            ok = min(black) >= min(white) - BLACK_BOX_MARGIN
            checks["black_box_weaker"] = checks.get("black_box_weaker", True) and ok
            if not ok:
                flags.append(f"{norm} eps={eps:g}: black-box robust accuracy {min(black):.4f} is below white-box "
                             f"{min(white):.4f}: a sign of gradient masking")
    metrics = {f"sanity/{k}": 1.0 if v else 0.0 for k, v in checks.items()}
    metrics["sanity/monotone_in_eps"] = NOT_APPLICABLE if monotone is None else float(monotone)
    return [(Summary(SUITE), TaskResult(metrics, {"flags": flags, "curves": dict(curves)}))]


SUITES.add(SUITE, Suite(SUITE, "robust accuracy under white- and black-box attacks and AutoAttack ensembles, with "
                               "gradient-masking sanity checks", AdversarialOptions, build_adversarial,
                        summarize_adversarial),
           SuiteMeta(("Croce & Hein 2020, arXiv:2003.01690", "Carlini et al. 2019, arXiv:1902.06705")))

__all__ = ["ENSEMBLES", "SUITE"]
