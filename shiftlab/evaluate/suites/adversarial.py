"""The adversarial suite: robust accuracy per (attack or ensemble, norm, eps), resumable per batch.

Attacks are those of ``shiftlab.attacks`` (a single attack or an ensemble such as
``autoattack-standard``, Croce & Hein 2020, arXiv:2003.01690). The summary checks the result for
signs of a broken evaluation after Carlini et al. 2019 (arXiv:1902.06705) and Tramèr et al. 2020
(arXiv:2002.08347): robust accuracy must not increase with eps, must reach ≈ 0 at a very large
eps, must not exceed clean accuracy, and a black-box attack must not beat the white-box ones.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from shiftlab.attacks import ATTACKS, Norm, ThreatModel, check_model, ensemble_spec, run_ensemble
from shiftlab.errors import UserError
from shiftlab.evaluate.tasks import SUITES, EvalContext, Suite, Task, TaskResult
from shiftlab.store import TaskRow

DEFAULT_ATTACKS = ("apgd-ce",)
SANITY_ATTACK = "apgd-ce"
SANITY_STEPS = 20
MONOTONE_TOL = 0.005
LARGE_EPS_MAX_ACC = 0.02
BLACK_BOX_MARGIN = 0.02


def eps_display(eps: float) -> str:
    """"8/255" when eps is a whole number of 1/255 steps, else the shortest decimal ("0.1")."""
    k = eps * 255
    if abs(k - round(k)) < 1e-6 and round(k) != 255 and abs(eps - round(eps, 3)) > 1e-9:
        return f"{round(k)}/255"
    return f"{eps:g}"


def large_eps(norm: Norm, ctx: EvalContext) -> float:
    """An eps at which every image can be turned into any other: 1 (Linf) or the box diagonal (L2)."""
    info = ctx.data.info
    if norm is Norm.LINF:
        return 1.0
    return float(math.sqrt(info.channels * info.image_size[0] * info.image_size[1]))


def _attack_task(ctx: EvalContext, attack: str, threat: ThreatModel, budgets: dict[str, int], sanity_run: bool) -> Task:
    spec = ensemble_spec(attack)
    key = f"adversarial/{attack}/{threat.norm.value}/{threat.eps:g}"
    params: dict[str, Any] = {
        "attack": attack, "norm": threat.norm.value, "eps": threat.eps, "eps_display": eps_display(threat.eps),
        "budgets": {name: dict(over) | budgets for name, over in spec}, "large_eps_check": sanity_run,
        "limit": ctx.options.limit, "n": len(ctx.data),
    }
    return Task(key=key, suite="adversarial", params=params, run=_runner(key, attack, threat, budgets))


def _runner(key: str, attack: str, threat: ThreatModel, budgets: dict[str, int]) -> Callable[[EvalContext], TaskResult]:
    def run(ctx: EvalContext) -> TaskResult:
        started = time.perf_counter()
        spec = ensemble_spec(attack)
        targeted = any(ATTACKS.meta(name).targeted for name, _ in spec)
        task_id = ctx.task_id(key)
        done = ctx.store.load_batches(task_id)
        robust: list[bool] = []
        clean: list[bool] = []
        broken_by: list[str | None] = []
        sanity: dict[str, Any] | None = None
        ctx.progress.start(key, len(ctx.data))
        for i, x, y in ctx.batches():
            if sanity is None:
                sanity = check_model(ctx.model, x[:64], y[:64], threat.n_target_classes, targeted).to_dict()
            if i not in done:
                res = run_ensemble(ctx.model, x, y, threat, spec, ctx.generator(key, i), ctx.options.batch_size, budgets)
                done[i] = {"robust": res.robust.tolist(), "clean": res.clean_correct.tolist(),
                           "broken_by": res.broken_by}
                ctx.store.save_batch(task_id, i, done[i])
            robust += done[i]["robust"]
            clean += done[i]["clean"]
            broken_by += done[i]["broken_by"]
            ctx.progress.advance(len(y))
        ctx.progress.finish()
        n = len(robust)
        counts: dict[str, int] = defaultdict(int)
        for b in broken_by:
            if b is not None:
                counts[b] += 1
        metrics = {"robust_accuracy": sum(robust) / max(n, 1), "clean_accuracy": sum(clean) / max(n, 1),
                   "n": float(n), "seconds": time.perf_counter() - started}
        metrics |= {f"broken_by/{name}": float(counts.get(name, 0)) for name, _ in spec}
        return TaskResult(metrics, {"breakdown": {"broken_by": dict(counts), "robust": int(sum(robust)),
                                                  "clean_correct": int(sum(clean)), "n": n},
                                    "sanity": sanity or {}})
    return run


def build_adversarial(ctx: EvalContext) -> list[Task]:
    opts = ctx.options
    if not opts.eps:
        raise UserError("the adversarial suite needs at least one --eps (e.g. --eps 0.1 or --eps 0.0314)")
    norm = Norm.parse(opts.norm)
    attacks = opts.attacks or DEFAULT_ATTACKS
    for name in attacks:
        ensemble_spec(name)  # unknown names fail before any work
    tasks = [_attack_task(ctx, a, ThreatModel(norm, eps), {}, False) for a in attacks for eps in opts.eps]
    big = ThreatModel(norm, large_eps(norm, ctx))
    if big.eps not in opts.eps or SANITY_ATTACK not in attacks:
        tasks.append(_attack_task(ctx, SANITY_ATTACK, big, {"steps": SANITY_STEPS}, True))
    return tasks


def _is_black_box(attack: str) -> bool:
    spec = ensemble_spec(attack)
    return all(ATTACKS.meta(name).black_box for name, _ in spec)


def summarize_adversarial(ctx: EvalContext, rows: list[TaskRow]) -> TaskResult | None:
    if not rows:
        return None
    curves: dict[str, list[list[float]]] = defaultdict(list)
    flags: list[str] = []
    checks: dict[str, bool] = {}
    for r in rows:
        p, m = r.params, r.metrics
        curves[f"{p['attack']}/{p['norm']}"].append([float(p["eps"]), float(m["robust_accuracy"])])
        checks["robust_le_clean"] = checks.get("robust_le_clean", True)
        if m["robust_accuracy"] > m["clean_accuracy"] + 1e-9:
            checks["robust_le_clean"] = False
            flags.append(f"{r.id.task_key}: robust accuracy {m['robust_accuracy']:.4f} exceeds clean accuracy")
        for msg in (r.artifacts.get("sanity") or {}).get("messages", []):
            flags.append(f"{r.id.task_key}: {msg}")
            checks["pre_attack"] = False
        checks.setdefault("pre_attack", True)
        if p.get("large_eps_check"):
            ok = m["robust_accuracy"] <= LARGE_EPS_MAX_ACC
            checks["large_eps_zero"] = checks.get("large_eps_zero", True) and ok
            if not ok:
                flags.append(f"{r.id.task_key}: robust accuracy {m['robust_accuracy']:.4f} at eps={p['eps']:g} "
                             "(the whole image box) should be ≈ 0: gradient masking or a broken attack")
        broken_sq = m.get("broken_by/square", 0.0)
        if broken_sq > BLACK_BOX_MARGIN * max(m["n"], 1) and not _is_black_box(p["attack"]):
            checks["black_box_weaker"] = False
            flags.append(f"{r.id.task_key}: Square broke {int(broken_sq)} points the white-box attacks missed: "
                         "a sign of gradient masking")
    for name, pts in curves.items():
        pts.sort()
        ok = all(b[1] <= a[1] + MONOTONE_TOL for a, b in zip(pts, pts[1:], strict=False))
        checks["monotone_in_eps"] = checks.get("monotone_in_eps", True) and ok
        if not ok:
            flags.append(f"{name}: robust accuracy increases with eps {pts}: the attack is not converging")
    by_point: dict[tuple[str, float], dict[str, float]] = defaultdict(dict)
    for r in rows:
        by_point[(r.params["norm"], float(r.params["eps"]))][r.params["attack"]] = r.metrics["robust_accuracy"]
    for (norm, eps), accs in by_point.items():
        white = [v for a, v in accs.items() if not _is_black_box(a)]
        black = [v for a, v in accs.items() if _is_black_box(a)]
        if white and black:
            ok = min(black) >= min(white) - BLACK_BOX_MARGIN
            checks["black_box_weaker"] = checks.get("black_box_weaker", True) and ok
            if not ok:
                flags.append(f"{norm} eps={eps:g}: black-box robust accuracy {min(black):.4f} is below white-box "
                             f"{min(white):.4f}: a sign of gradient masking")
    metrics = {f"sanity/{k}": 1.0 if v else 0.0 for k, v in checks.items()}
    return TaskResult(metrics, {"flags": flags, "curves": dict(curves)})


SUITES.add("adversarial", Suite("adversarial", "robust accuracy under white- and black-box attacks and "
                                "AutoAttack ensembles, with gradient-masking sanity checks",
                                build_adversarial, summarize_adversarial))
