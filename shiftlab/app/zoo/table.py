"""The zoo's recipe × metric table, read from the store with typed identities.

Every zoo model is evaluated with one protocol (:data:`ZOO_PROTOCOL`), so the table compares recipes
and nothing else: clean accuracy, mean corruption accuracy (15 benchmark corruptions × 5 severities,
the image size's parameter table), robust accuracy under APGD-CE at L∞ ε 0.1, ECE (15 bins) before and
after temperature scaling, mean OOD AUROC over sets and detectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shiftlab.core.identity import AttackPoint, CalibrationCell, CleanCell, DatasetIdentity, OODPair, Summary
from shiftlab.store import Store, TaskRow

ZOO_SUITES = ("clean", "corruptions", "adversarial", "calibration", "ood")
ZOO_EPS = 0.1
ZOO_ATTACK = "apgd-ce"
ZOO_OPTIONS: dict[str, Any] = {"norm": "linf", "eps": (ZOO_EPS,), "attack": (ZOO_ATTACK,)}
HEADLINE = {
    "clean_acc": "clean acc",
    "corruption_acc": "corruption acc",
    f"robust_linf_{ZOO_EPS:g}": f"APGD-CE L∞ {ZOO_EPS:g}",
    "ece": "ECE",
    "ece_ts": "ECE after TS",
    "ood_auroc": "OOD AUROC",
}


@dataclass(frozen=True)
class ZooRow:
    """One zoo model's line of the table (None: not evaluated)."""

    name: str
    recipe: str
    train_seconds: float | None
    metrics: dict[str, float | None]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def headline(rows: list[TaskRow]) -> dict[str, float | None]:
    """The headline metrics from one model's rows on one dataset identity and seed."""
    out: dict[str, float | None] = dict.fromkeys(HEADLINE)
    auroc: list[float] = []
    for row in rows:
        task, m = row.id.task, row.metrics
        if isinstance(task, CleanCell):
            out["clean_acc"] = m.get("accuracy")
        elif isinstance(task, Summary) and task.of == "corruptions" and row.artifacts.get("protocol", {}).get(
                "default_table", True):
            out["corruption_acc"] = m.get("mean_corruption_accuracy")
        elif isinstance(task, AttackPoint) and not task.budgets and (task.attack, task.norm, task.eps) == (
                ZOO_ATTACK, "linf", ZOO_EPS):
            out[f"robust_linf_{ZOO_EPS:g}"] = m.get("robust_accuracy")
        elif isinstance(task, CalibrationCell) and task.is_clean:
            out["ece"], out["ece_ts"] = m.get("ece"), m.get("ece_ts")
        elif isinstance(task, OODPair) and "auroc" in m:
            auroc.append(m["auroc"])
    out["ood_auroc"] = _mean(auroc)
    return {k: (None if v is None or v != v else float(v)) for k, v in out.items()}


def zoo_table(models: list[Any], store: Store, dataset: DatasetIdentity, seed: int = 0) -> list[ZooRow]:
    """The table of ``models`` (ZooModels) on ``dataset`` from the store."""
    out = []
    for zm in models:
        rows = store.tasks(zm.card.fingerprint, dataset=dataset, seed=seed)
        out.append(ZooRow(zm.name, zm.entry.recipe + "".join(f" {k}={v}" for k, v in zm.entry.recipe_args.items()),
                          zm.card.training.get("train_seconds"), headline(rows)))
    return out
