"""The calibration suite: calibration errors on the clean test set and under corruption, before and
after temperature scaling fitted on the clean validation split.

Tasks (:class:`~shiftlab.core.identity.CalibrationCell`):
* clean: ece, ece_adaptive, mce, classwise_ece, nll, brier, accuracy, each also with suffix ``_ts``
  after temperature scaling (Guo et al. 2017, arXiv:1706.04599), plus ``temperature``; artifacts
  ``reliability`` and ``reliability_ts``.
* one per corruption cell: the same metrics on the very images and logits of the corruptions suite's
  cell (``evaluation/corrupted.py``), with the temperature fitted on clean validation data (Ovadia et
  al. 2019, "Can You Trust Your Model's Uncertainty?", arXiv:1906.02530).

The temperature is fitted once per run (and read back from the stored clean row on resume), on at
most ``VAL_LIMIT`` images of the validation split; the test set is never used to fit it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from shiftlab.calibrate import TemperatureFit, fit_temperature
from shiftlab.core.identity import CalibrationCell, CorruptionCell, Summary, TaskIdentity
from shiftlab.evaluation.adaptation import (
    ADAPT_FLAGS,
    AdaptOptions,
    adaptation,
    adapted_summaries,
    adapted_tasks,
)
from shiftlab.evaluation.context import EvalContext
from shiftlab.evaluation.corrupted import cell_logits
from shiftlab.evaluation.forward import forward
from shiftlab.evaluation.grid import (
    CORRUPTIONS,
    PARAMS,
    SEVERITIES_FLAG,
    benchmark_names,
    corruption_grid,
    resolve_table,
)
from shiftlab.evaluation.suite import SUITES, Suite, SuiteMeta, Task, TaskResult
from shiftlab.metrics import ECE, MCE, Accuracy, AdaptiveECE, BrierScore, ClasswiseECE, NegativeLogLikelihood
from shiftlab.store import TaskRow

SUITE = "calibration"
N_BINS = 15
VAL_LIMIT = 10_000
METRIC_NAMES = ("ece", "ece_adaptive", "mce", "classwise_ece", "nll", "brier", "accuracy")


@dataclass(frozen=True)
class CalibrationOptions(AdaptOptions):
    """The corruption cells to measure calibration on (default: the 15 benchmark corruptions × 1..5), and the
    test-time adaptation (if any) whose calibration is measured next to them (``_ts``: the source model's
    temperature applied to the adapted logits)."""

    corruptions: tuple[str, ...] | None = None
    severities: tuple[int, ...] | None = None
    params: str | None = None
    FLAGS = (CORRUPTIONS, SEVERITIES_FLAG, PARAMS, *ADAPT_FLAGS)


def calibration_metrics(logits: torch.Tensor, labels: torch.Tensor, n_bins: int = N_BINS
                        ) -> tuple[dict[str, float], dict[str, Any]]:
    """(metrics named as in METRIC_NAMES, reliability-diagram data) of one set of logits."""
    ece = ECE(n_bins)
    metrics = {"ece": ece, "ece_adaptive": AdaptiveECE(n_bins), "mce": MCE(n_bins),
               "classwise_ece": ClasswiseECE(n_bins), "nll": NegativeLogLikelihood(), "brier": BrierScore(),
               "accuracy": Accuracy()}
    for metric in metrics.values():
        metric.update(logits, labels)
    return {name: float(m.compute()) for name, m in metrics.items()}, ece.reliability()


def fit_val_temperature(ctx: EvalContext) -> TemperatureFit:
    """Temperature minimising NLL on (the first ``VAL_LIMIT`` images of) the clean validation split."""
    val = ctx.split("val")
    if len(val) > VAL_LIMIT:
        val = val.subset(torch.arange(VAL_LIMIT))
    out = forward(ctx, val, progress=False)
    assert out.logits is not None
    return fit_temperature(out.logits, out.labels)


def stored_temperature(ctx: EvalContext) -> float | None:
    """The temperature of this model's stored clean calibration row, if any."""
    row = next((r for r in ctx.store.tasks(ctx.fingerprint, dataset=ctx.dataset, suite=SUITE, seed=ctx.run.seed,
                                           with_artifacts=False)
                if isinstance(r.id.task, CalibrationCell) and r.id.task.is_clean), None)
    return None if row is None else row.metrics.get("temperature")


def calibration_result(logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> TaskResult:
    """All metrics before and after dividing the logits by ``temperature``."""
    before, reliability = calibration_metrics(logits, labels)
    after, reliability_ts = calibration_metrics(logits / temperature, labels)
    metrics = {**before, **{f"{k}_ts": v for k, v in after.items()}, "temperature": temperature,
               "n": float(labels.numel())}
    return TaskResult(metrics, {"reliability": reliability, "reliability_ts": reliability_ts})


def build_calibration(ctx: EvalContext, opts: CalibrationOptions) -> list[Task]:
    memo: dict[str, float] = {}  # the temperature, shared by this build's tasks only

    def temperature(c: EvalContext) -> float:
        if "t" not in memo:
            t = stored_temperature(c)
            memo["t"] = t if t is not None else fit_val_temperature(c).temperature
        return memo["t"]

    def run_clean(c: EvalContext) -> TaskResult:
        fit = fit_val_temperature(c)
        memo["t"] = fit.temperature
        out = forward(c)
        assert out.logits is not None
        result = calibration_result(out.logits, out.labels, fit.temperature)
        result.metrics.update(val_nll=fit.nll_before, val_nll_ts=fit.nll_after, val_n=float(fit.n))
        return result

    def run_cell(cell: CorruptionCell) -> Any:
        return lambda c: calibration_result(*cell_logits(c, cell), temperature(c))

    common = {"limit": ctx.run.limit, "n": len(ctx.data), "ece_bins": N_BINS, "temperature_fit": "val"}
    tasks = [Task(CalibrationCell(), {**common, "shift": None}, run_clean)]
    cells = corruption_grid(ctx.data.info.image_size, opts.corruptions, opts.severities, opts.params,
                            default=benchmark_names())
    for cell in cells:
        params = {**common, "shift": cell.corruption, "severity": cell.severity, "table": cell.table}
        tasks.append(Task(CalibrationCell(cell.corruption, cell.severity, cell.table), params, run_cell(cell)))
    return tasks + adapted_tasks(ctx, adaptation(opts), SUITE, [None, *cells],
                                 lambda c, logits, labels: calibration_result(logits, labels, temperature(c)))


def summarize_calibration(ctx: EvalContext, opts: CalibrationOptions,
                          rows: list[TaskRow]) -> list[tuple[TaskIdentity, TaskResult]]:
    """Mean of each metric over the (unadapted) corruption cells of the table, per severity and over all;
    one summary per adaptation setting over its adapted cells."""
    table = resolve_table(opts.params, ctx.data.info.image_size)
    shifted = [r for r in rows if isinstance(r.id.task, CalibrationCell) and r.id.task.table == table]
    adapted: list[tuple[TaskIdentity, TaskResult]] = [
        *adapted_summaries(rows, SUITE, table, lambda cell: CalibrationCell(cell.corruption, cell.severity, cell.table))]
    if not shifted:
        return adapted
    names = [*METRIC_NAMES, *(f"{m}_ts" for m in METRIC_NAMES)]
    out: dict[str, float] = {}
    groups: dict[str, list[TaskRow]] = {"all": shifted}
    for r in shifted:
        assert isinstance(r.id.task, CalibrationCell)
        groups.setdefault(f"s{r.id.task.severity}", []).append(r)
    for group, members in groups.items():
        for name in names:
            values = [r.metrics[name] for r in members if name in r.metrics]
            if values:
                out[f"{name}/{group}"] = sum(values) / len(values)
    protocol = {"table": table, "default_table": table == resolve_table(None, ctx.data.info.image_size),
                "cells": len(shifted), "ece_bins": N_BINS, "temperature_fit": "val"}
    return [(Summary(SUITE, table), TaskResult(out, {"protocol": protocol})), *adapted]


SUITES.add(SUITE, Suite(SUITE, "ECE (equal-width/equal-mass), MCE, class-wise ECE, NLL, Brier before/after "
                               "temperature scaling, clean and under corruption", CalibrationOptions,
                        build_calibration, summarize_calibration),
           SuiteMeta(("Guo et al. 2017, arXiv:1706.04599", "Ovadia et al. 2019, arXiv:1906.02530")))
