"""The calibration suite: calibration errors on the clean test set and under corruption, before and
after temperature scaling fitted on the clean validation split.

Tasks:
* ``calibration/clean``: ece, ece_adaptive, mce, classwise_ece, nll, brier, accuracy, each also with
  suffix ``_ts`` after temperature scaling (Guo et al. 2017, arXiv:1706.04599), plus ``temperature``;
  artifacts ``reliability`` and ``reliability_ts``.
* ``calibration/<corruption>/<severity>``: the same metrics on corrupted test images (the very images
  and logits of the corruptions suite's cell, via ``evaluate/corrupted.py``), with the
  temperature fitted on clean validation data (Ovadia et al. 2019, "Can You Trust Your Model's
  Uncertainty?", arXiv:1906.02530). Present only when ``shiftlab.shifts`` is importable.

The temperature is fitted once per run (and read back from the stored ``calibration/clean`` row on
resume), on at most ``VAL_LIMIT`` images of ``ctx.split("val")``; the test set is never used to fit it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch

from shiftlab.calibrate import TemperatureFit, fit_temperature
from shiftlab.errors import UserError
from shiftlab.evaluate.classification import BatchTransform, collect_logits
from shiftlab.evaluate.corrupted import corrupted_logits
from shiftlab.evaluate.tasks import SUITES, EvalContext, Suite, Task, TaskResult
from shiftlab.metrics import ECE, MCE, Accuracy, AdaptiveECE, BrierScore, ClasswiseECE, NegativeLogLikelihood
from shiftlab.store import TaskRow

SUITE = "calibration"
N_BINS = 15
VAL_LIMIT = 10_000
METRIC_NAMES = ("ece", "ece_adaptive", "mce", "classwise_ece", "nll", "brier", "accuracy")


@dataclass(frozen=True, slots=True)
class CorruptionSpec:
    """One (corruption, severity) cell of the grid, with the parameter table asked for."""

    name: str
    severity: int
    table: str | None

    def params(self) -> dict[str, Any]:
        return {"shift": self.name, "severity": self.severity, "table": self.table}


def shifts_module() -> ModuleType | None:
    """``shiftlab.shifts`` when it is importable and exports ``SHIFTS`` (optional here)."""
    try:
        module = importlib.import_module("shiftlab.shifts")
    except ImportError:
        return None
    return module if hasattr(module, "SHIFTS") else None


def corruption_grid(ctx: EvalContext, severities: tuple[int, ...] | None = None) -> list[CorruptionSpec]:
    """Every (corruption, severity) asked for by ``ctx.options`` (default: the 15 benchmark
    corruptions x severities 1..5), or ``severities`` when given; empty without ``shiftlab.shifts``."""
    shifts = shifts_module()
    if shifts is None:
        return []
    registry = shifts.SHIFTS
    if ctx.options.corruptions is not None:
        names = list(ctx.options.corruptions)
        for name in names:
            registry.get(name)  # an unknown name is a UserError before any work
    else:
        from shiftlab.shifts.base import benchmark_names

        names = benchmark_names()
    chosen = severities or ctx.options.severities
    out = []
    for name in names:
        valid = tuple(registry.meta(name).severities)
        for severity in chosen or valid:
            if severity not in valid:
                raise UserError(f"severity {severity} is not valid for {name}; use one of {valid}")
            out.append(CorruptionSpec(name, int(severity), ctx.options.params))
    return out


def corruption_transform(ctx: EvalContext, key: str, spec: CorruptionSpec) -> BatchTransform:
    """``transform(x, y, batch_index)`` applying the corruption with the (seed, key, batch) generator."""
    shifts = shifts_module()
    assert shifts is not None
    corrupt = shifts.SHIFTS.get(spec.name)

    def transform(x: torch.Tensor, y: torch.Tensor, batch_index: int) -> torch.Tensor:
        return corrupt(x, spec.severity, ctx.generator(key, batch_index, x.device), spec.table)

    return transform


def calibration_metrics(logits: torch.Tensor, labels: torch.Tensor, n_bins: int = N_BINS) -> tuple[dict[str, float], dict[str, Any]]:
    """(metrics named as in METRIC_NAMES, reliability-diagram data) of one set of logits."""
    ece = ECE(n_bins)
    metrics = {
        "ece": ece,
        "ece_adaptive": AdaptiveECE(n_bins),
        "mce": MCE(n_bins),
        "classwise_ece": ClasswiseECE(n_bins),
        "nll": NegativeLogLikelihood(),
        "brier": BrierScore(),
        "accuracy": Accuracy(),
    }
    for metric in metrics.values():
        metric.update(logits, labels)
    return {name: float(m.compute()) for name, m in metrics.items()}, ece.reliability()


@torch.no_grad()
def validation_logits(ctx: EvalContext) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of (the first ``VAL_LIMIT`` images of) the validation split."""
    val = ctx.split("val")
    if len(val) > VAL_LIMIT:
        val = val.subset(torch.arange(VAL_LIMIT))
    logits, labels = [], []
    for _, x, y in ctx.batches(val):
        logits.append(ctx.model(x).float().cpu())
        labels.append(y.cpu())
    return torch.cat(logits), torch.cat(labels)


def fit_val_temperature(ctx: EvalContext) -> TemperatureFit:
    """Temperature minimising NLL on the clean validation split."""
    return fit_temperature(*validation_logits(ctx))


def stored_temperature(ctx: EvalContext) -> float | None:
    """The temperature of this model's stored ``calibration/clean`` row, if any."""
    for row in ctx.store.tasks(ctx.fingerprint, dataset=ctx.dataset_key, suite=SUITE, with_artifacts=False):
        if row.id.task_key == f"{SUITE}/clean" and row.id.seed == ctx.options.seed:
            return row.metrics.get("temperature")
    return None


def calibration_result(logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> TaskResult:
    """All metrics before and after dividing the logits by ``temperature``."""
    before, reliability = calibration_metrics(logits, labels)
    after, reliability_ts = calibration_metrics(logits / temperature, labels)
    metrics = {**before, **{f"{k}_ts": v for k, v in after.items()}}
    metrics["temperature"] = temperature
    metrics["n"] = float(labels.numel())
    return TaskResult(metrics, {"reliability": reliability, "reliability_ts": reliability_ts})


def build_calibration(ctx: EvalContext) -> list[Task]:
    memo: dict[str, float] = {}  # the temperature, shared by this build's tasks only

    def temperature(c: EvalContext) -> float:
        if "t" not in memo:
            t = stored_temperature(c)
            memo["t"] = t if t is not None else fit_val_temperature(c).temperature
        return memo["t"]

    def run_clean(c: EvalContext) -> TaskResult:
        fit = fit_val_temperature(c)
        memo["t"] = fit.temperature
        result = calibration_result(*collect_logits(c, label="calibration/clean"), fit.temperature)
        result.metrics.update(val_nll=fit.nll_before, val_nll_ts=fit.nll_after, val_n=float(fit.n))
        return result

    def run_shift(key: str, spec: CorruptionSpec) -> Any:
        def run(c: EvalContext) -> TaskResult:
            t = temperature(c)
            return calibration_result(*corrupted_logits(c, spec.name, spec.severity, spec.table, label=key), t)

        return run

    common = {"limit": ctx.options.limit, "n": len(ctx.data), "ece_bins": N_BINS, "temperature_fit": "val"}
    tasks = [Task(f"{SUITE}/clean", SUITE, {**common, "shift": None}, run_clean)]
    for spec in corruption_grid(ctx):
        key = f"{SUITE}/{spec.name}/{spec.severity}"
        tasks.append(Task(key, SUITE, {**common, **spec.params()}, run_shift(key, spec)))
    return tasks


def summarize_calibration(ctx: EvalContext, rows: list[TaskRow]) -> TaskResult | None:
    """Mean of each metric over the corruption tasks, per severity and over all, before/after scaling."""
    shifted = [r for r in rows if r.id.task_key != f"{SUITE}/clean"]
    if not shifted:
        return None
    names = [*METRIC_NAMES, *(f"{m}_ts" for m in METRIC_NAMES)]
    out: dict[str, float] = {}
    groups: dict[str, list[TaskRow]] = {"all": shifted}
    for r in shifted:
        groups.setdefault(f"s{r.params.get('severity')}", []).append(r)
    for group, members in groups.items():
        for name in names:
            values = [r.metrics[name] for r in members if name in r.metrics]
            if values:
                out[f"{name}/{group}"] = sum(values) / len(values)
    return TaskResult(out)


SUITES.add(
    SUITE,
    Suite(SUITE, "ECE (equal-width/equal-mass), MCE, class-wise ECE, NLL, Brier before/after temperature scaling, "
          "clean and under corruption", build_calibration, summarize_calibration),
)
