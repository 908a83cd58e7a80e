"""The literature's predictions about the recipes, checked on the zoo's measured table.

Each check states the claim, the rule used to decide it on our numbers, and the numbers; a check
whose models are missing or unevaluated is reported as undecided, never as passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shiftlab.app.zoo.table import ZOO_EPS, ZooRow

ROBUST = f"robust_linf_{ZOO_EPS:g}"
CLEAN_LOSS_MAX = 0.015  # "≤ 1.5 pp clean loss"
ERM_ROBUST_MAX = 0.05  # "ERM near 0"
FAR_ABOVE = 0.30  # "far above ERM": at least 30 points more robust accuracy
NEAR = 0.05  # fast-AT "near" PGD-AT: within 5 points


@dataclass(frozen=True)
class Check:
    claim: str
    rule: str
    holds: bool | None  # None: undecided (a model or metric is missing)
    detail: str


def _get(rows: dict[str, ZooRow], name: str, metric: str) -> float | None:
    row = rows.get(name)
    return None if row is None else row.metrics.get(metric)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def corruption_checks(rows: dict[str, ZooRow]) -> list[Check]:
    out = []
    erm_c, erm_a = _get(rows, "erm", "corruption_acc"), _get(rows, "erm", "clean_acc")
    for name in ("augmix", "prime", "pixmix", "gaussian-noise"):
        c, a = _get(rows, name, "corruption_acc"), _get(rows, name, "clean_acc")
        holds = None if None in (c, a, erm_c, erm_a) else bool(c > erm_c and erm_a - a <= CLEAN_LOSS_MAX)  # type: ignore[operator]
        out.append(Check(f"{name} raises mean corruption accuracy over ERM with ≤ 1.5 pp clean loss",
                         "corruption_acc > ERM's and clean_acc ≥ ERM's − 1.5 pp", holds,
                         f"corruption {_pct(c)} vs ERM {_pct(erm_c)}; clean {_pct(a)} vs ERM {_pct(erm_a)}"))
    return out


def adversarial_checks(rows: dict[str, ZooRow]) -> list[Check]:
    erm_r = _get(rows, "erm", ROBUST)
    out = [Check("ERM's robust accuracy is near 0", f"≤ {_pct(ERM_ROBUST_MAX)}",
                 None if erm_r is None else erm_r <= ERM_ROBUST_MAX, f"ERM {_pct(erm_r)}")]
    for name in ("pgd-at", "trades", "fat"):
        r = _get(rows, name, ROBUST)
        holds = None if r is None or erm_r is None else r >= erm_r + FAR_ABOVE
        out.append(Check(f"{name} raises eps-{ZOO_EPS:g} robust accuracy far above ERM",
                         f"≥ ERM + {100 * FAR_ABOVE:.0f} pp", holds, f"{name} {_pct(r)} vs ERM {_pct(erm_r)}"))
    hi_a, hi_r = _get(rows, "trades", "clean_acc"), _get(rows, "trades", ROBUST)
    lo_a, lo_r = _get(rows, "trades-beta1", "clean_acc"), _get(rows, "trades-beta1", ROBUST)
    holds = None if None in (hi_a, hi_r, lo_a, lo_r) else bool(hi_r > lo_r and hi_a < lo_a)  # type: ignore[operator]
    out.append(Check("TRADES trades clean for robust accuracy via beta", "beta 6 vs beta 1: higher robust, lower clean",
                     holds, f"beta 6: clean {_pct(hi_a)}, robust {_pct(hi_r)}; beta 1: clean {_pct(lo_a)}, robust {_pct(lo_r)}"))
    f_r, p_r = _get(rows, "fast-at", ROBUST), _get(rows, "pgd-at", ROBUST)
    f_t = rows["fast-at"].train_seconds if "fast-at" in rows else None
    p_t = rows["pgd-at"].train_seconds if "pgd-at" in rows else None
    holds = None if None in (f_r, p_r, f_t, p_t) else bool(f_r >= p_r - NEAR and f_t < p_t)  # type: ignore[operator]
    times = "—" if f_t is None or p_t is None else f"{f_t:.0f}s vs {p_t:.0f}s ({f_t / p_t:.2f}×)"
    out.append(Check("fast-AT reaches robust accuracy near PGD-AT in a fraction of the time",
                     f"robust ≥ PGD-AT's − {100 * NEAR:.0f} pp and less training time", holds,
                     f"robust {_pct(f_r)} vs {_pct(p_r)}; training {times}"))
    return out


def early_stopping_check(card_training: dict[str, Any] | None) -> Check:
    """From the pgd-at card's per-epoch validation scores (PGD-10 accuracy on held-out images)."""
    claim = "robust early stopping beats the last epoch when robust overfitting occurs"
    history = (card_training or {}).get("history", [])
    scores = [row.get("select_score") for row in history]
    if not scores or any(s is None for s in scores):
        return Check(claim, "needs per-epoch select scores", None, "pgd-at card has no selection history")
    best = max(range(len(scores)), key=lambda i: scores[i])
    listed = ", ".join(f"epoch {i + 1}: {_pct(s)}" for i, s in enumerate(scores))
    if best == len(scores) - 1:
        return Check(claim, "robust overfitting = a later epoch scores below an earlier one", None,
                     f"no robust overfitting in {len(scores)} epochs (validation robust accuracy {listed}); "
                     "the kept checkpoint is the last epoch, so the claim is not tested here")
    return Check(claim, "kept epoch's validation robust accuracy > last epoch's", scores[best] > scores[-1],
                 f"kept epoch {best + 1}; {listed}")


def run_checks(rows: list[ZooRow], pgd_at_training: dict[str, Any] | None = None) -> list[Check]:
    by_name = {r.name: r for r in rows}
    return [*corruption_checks(by_name), *adversarial_checks(by_name), early_stopping_check(pgd_at_training)]
