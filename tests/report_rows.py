"""Stored rows for the report tests, written with typed identities in the shape the suites store.

Real runs (``shiftlab.evaluate``) cover the shapes the suites produce today; these seeded rows add
models, datasets and cases a small real run cannot (several attacks and budgets, a baseline's mCE,
other parameter tables, a failed or vacuous sanity check, an unknown suite).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from typing import Any

from shiftlab.core.identity import (
    AttackPoint,
    CalibrationCell,
    CleanCell,
    CorruptionCell,
    DatasetIdentity,
    OODPair,
    Summary,
    TaskIdentity,
)
from shiftlab.store import ResultKey, Store

DATA = DatasetIdentity("fashion-mnist", "test", 200, "ab" * 32, 200)
DATA_SOURCE = "/usr/share/datasets/fashion-mnist (test split)"
FAMILIES = {"gaussian_noise": "noise", "shot_noise": "noise", "defocus_blur": "blur", "fog": "weather",
            "contrast": "digital"}
ALL_SUITES = frozenset({"clean", "corruptions", "adversarial", "calibration", "ood"})


def add_model(store: Store, fingerprint: str, name: str, recipe: str = "erm", params: int = 100_000) -> None:
    store.upsert_model(fingerprint, name=name, arch="small-cnn", dataset="fashion-mnist", recipe=recipe,
                       num_params=params, card={}, checkpoint_path="/nonexistent")


class RowWriter:
    """Writes rows of one model on one dataset identity (registering the dataset with its source)."""

    def __init__(self, store: Store, fingerprint: str, dataset: DatasetIdentity = DATA, source: str = DATA_SOURCE,
                 seed: int = 0) -> None:
        self.store, self.fingerprint, self.dataset, self.seed = store, fingerprint, dataset, seed
        store.register_dataset(dataset, source)
        self.clock = 1_700_000_000.0  # fixed times: the report must not depend on the wall clock

    def write(self, task: TaskIdentity, metrics: dict[str, float], artifacts: dict[str, Any] | None = None,
              params: dict[str, Any] | None = None) -> None:
        self.clock += 1.0
        self.store.write_task(ResultKey(self.fingerprint, self.dataset, task, self.seed), params=params or {},
                              metrics=metrics, artifacts=artifacts or {}, run_id="synthetic",
                              started_at=self.clock, duration_s=0.5)


def reliability(rng: random.Random, accuracy: float, bins: int = 15) -> dict[str, list[float]]:
    count = [0.0 if b < 3 else float(rng.randint(5, 40)) for b in range(bins)]
    confidence = [(b + 0.5) / bins for b in range(bins)]
    return {"bin_lower": [b / bins for b in range(bins)], "bin_upper": [(b + 1) / bins for b in range(bins)],
            "confidence": confidence, "accuracy": [min(1.0, c * accuracy / 0.9) for c in confidence], "count": count}


def classification(rng: random.Random, accuracy: float, n: int = 200) -> dict[str, float]:
    return {"accuracy": accuracy, "error": 1 - accuracy, "nll": -math.log(max(accuracy, 1e-3)),
            "brier": 1.2 * (1 - accuracy), "ece": 0.02 + 0.2 * (1 - accuracy) * rng.random(), "n": float(n)}


def synthetic_rows(store: Store, fingerprint: str, suites: Iterable[str], quality: float, *,
                   dataset: DatasetIdentity = DATA, source: str = DATA_SOURCE, table: str = "cifar",
                   default_table: bool = True, attacks: tuple[str, ...] = ("fgsm", "pgd"),
                   budgets: tuple[float, ...] = (0.05, 0.1, 8 / 255), mean_ce: float | None = None,
                   monotone: float = 1.0, masking: bool = False) -> None:
    """Plausible seeded rows of ``suites`` in the documented shape; accuracies are multiples of 1/200."""
    rng = random.Random(f"{fingerprint}-{dataset.content}")
    rows = RowWriter(store, fingerprint, dataset, source)
    suites = set(suites)

    def acc(value: float) -> float:
        return round(max(0.0, min(1.0, value)) * 200) / 200

    clean = acc(quality)
    if "clean" in suites:
        rows.write(CleanCell(), classification(rng, clean), {"reliability": reliability(rng, clean)},
                   {"limit": 200, "n": 200})
    if "corruptions" in suites:
        per: dict[str, dict[str, Any]] = {}
        for name, family in FAMILIES.items():
            errors = []
            for severity in range(1, 6):
                a = acc(clean * (1 - 0.1 * severity * rng.uniform(0.3, 1.0)))
                errors.append(1 - a)
                rows.write(CorruptionCell(name, severity, table), classification(rng, a),
                           {"reliability": reliability(rng, a)},
                           {"corruption": name, "family": family, "severity": severity, "table": table})
            per[name] = {"family": family, "errors": errors}
        mean_error = sum(sum(p["errors"]) for p in per.values()) / (5 * len(per))
        metrics = {"mean_corruption_accuracy": 1 - mean_error, "mean_corruption_error": mean_error}
        metrics |= {f"error/{n}": sum(p["errors"]) / 5 for n, p in per.items()}
        artifacts: dict[str, Any] = {"per_corruption": per, "protocol": {
            "table": table, "severities": [1, 2, 3, 4, 5], "default_table": default_table, "benchmark_complete": False,
            "normalisation": "none", "mce_reported": mean_ce is not None}}
        if mean_ce is not None:
            metrics |= {"mean_ce": mean_ce, "relative_mean_ce": mean_ce * 1.1}
            metrics |= {f"ce/{n}": mean_ce for n in per}
            artifacts["baseline"] = {"fingerprint": "ee" * 32, "checkpoint": "/baseline"}
        else:
            artifacts["baseline"] = {"missing": "the baseline has no rows: run shiftlab evaluate --model B"}
        rows.write(Summary("corruptions", table), metrics, artifacts)
    if "adversarial" in suites:
        for attack in attacks:
            for eps in budgets:
                robust = acc(clean * max(0.0, 1 - eps * (6 if attack == "pgd" else 4) / quality))
                rows.write(AttackPoint(attack, "linf", eps),
                           {"robust_accuracy": robust, "clean_accuracy": clean, "n": 200.0,
                            f"broken_by/{attack}": float(round(200 * (clean - robust)))},
                           {"breakdown": {}, "sanity": {"messages": []}},
                           {"attack": attack, "norm": "linf", "eps": eps, "large_eps_check": False})
        rows.write(AttackPoint("apgd-ce", "linf", 1.0, (("steps", 20),)),
                   {"robust_accuracy": 0.3 if masking else 0.0, "clean_accuracy": clean, "n": 200.0},
                   {"sanity": {"messages": []}}, {"large_eps_check": True})
        rows.write(Summary("adversarial"),
                   {"sanity/robust_le_clean": 1.0, "sanity/pre_attack": 1.0,
                    "sanity/large_eps_zero": 0.0 if masking else 1.0, "sanity/monotone_in_eps": monotone},
                   {"flags": ["gradient masking suspected"] if masking else [], "curves": {}})
    if "calibration" in suites:
        def calibrated(a: float) -> dict[str, float]:
            base = classification(rng, a)
            ece = base["ece"]
            return {**base, "ece_adaptive": ece, "mce": 2 * ece, "classwise_ece": ece / 3, "ece_ts": ece / 2,
                    "nll_ts": base["nll"] * 0.9, "brier_ts": base["brier"], "accuracy_ts": a, "temperature": 1.3}
        rows.write(CalibrationCell(), calibrated(clean),
                   {"reliability": reliability(rng, clean), "reliability_ts": reliability(rng, clean)})
        shifted = []
        for name in ("gaussian_noise", "fog"):
            for severity in (1, 3, 5):
                metrics = calibrated(acc(clean * (1 - 0.1 * severity)))
                shifted.append(metrics)
                rows.write(CalibrationCell(name, severity, table), metrics,
                           {"reliability": reliability(rng, metrics["accuracy"])})
        rows.write(Summary("calibration", table), {f"{m}/all": sum(s[m] for s in shifted) / len(shifted)
                                                   for m in ("ece", "ece_ts", "nll", "accuracy")})
    if "ood" in suites:
        for ood_set in ("digits", "image-folder:/data/ood/textures"):
            for detector in ("msp", "energy"):
                k = 1 + 4 * quality * rng.uniform(0.6, 1.0)
                fpr = [i / 20 for i in range(21)]
                tpr = [f ** (1 / k) for f in fpr]
                auroc = sum((tpr[i] + tpr[i + 1]) / 2 * 0.05 for i in range(20))
                rows.write(OODPair(ood_set, detector),
                           {"auroc": auroc, "aupr_in": auroc, "aupr_out": auroc, "fpr95": 1 - quality,
                            "n_in": 200.0, "n_out": 200.0}, {"roc": {"fpr": fpr, "tpr": tpr}})
        rows.write(Summary("ood"), {"auroc_mean/msp": 0.8, "fpr95_mean/msp": 0.4})
