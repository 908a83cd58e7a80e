"""The common-corruption suite: accuracy under the 15 + 4 corruptions of Hendrycks & Dietterich 2019,
"Benchmarking Neural Network Robustness to Common Corruptions and Perturbations" (arXiv:1903.12261).

One task per :class:`~shiftlab.core.identity.CorruptionCell`; the images come from the shared
corruption path (``evaluation/corrupted.py``). The summary (one per parameter table) follows the
paper: CE_c = Σ_s E_{s,c} / Σ_s E^base_{s,c}; mCE = mean of CE_c over the 15 benchmark corruptions;
relative CE_c = Σ_s (E_{s,c} − E_clean) / Σ_s (E^base_{s,c} − E^base_clean). The baseline's rows are
read from the store (evaluate the baseline first; the CLI and ``shiftlab.evaluation`` do it for you).
The unnormalised mean corruption error (the CIFAR-10-C convention) is always reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shiftlab.core.identity import CleanCell, CorruptionCell, Summary, TaskIdentity
from shiftlab.evaluation.adaptation import (
    ADAPT_FLAGS,
    AdaptOptions,
    adaptation,
    adapted_summaries,
    adapted_tasks,
)
from shiftlab.evaluation.context import EvalContext, evaluated_fingerprint
from shiftlab.evaluation.corrupted import cell_logits
from shiftlab.evaluation.flags import Flag, parse_checkpoint
from shiftlab.evaluation.grid import CORRUPTIONS, PARAMS, SEVERITIES_FLAG, corruption_grid, resolve_table
from shiftlab.evaluation.metrics import classification_result
from shiftlab.evaluation.suite import SUITES, Prerequisite, Suite, SuiteMeta, Task, TaskResult
from shiftlab.shifts import SEVERITIES, SHIFTS, benchmark_names
from shiftlab.store import TaskRow

SUITE = "corruptions"
BASELINE = Flag("baseline", "baseline checkpoint that normalises mCE (corruptions) and mFR/mT5D (stability); "
                "evaluated first when needed", parse_checkpoint, metavar="CHECKPOINT")


@dataclass(frozen=True)
class CorruptionOptions(AdaptOptions):
    """Which cells to run, the mCE baseline, and the test-time adaptation (if any) to run next to them."""

    corruptions: tuple[str, ...] | None = None
    severities: tuple[int, ...] | None = None
    params: str | None = None
    baseline: str | None = None
    FLAGS = (CORRUPTIONS, SEVERITIES_FLAG, PARAMS, BASELINE, *ADAPT_FLAGS)


def cell_task(ctx: EvalContext, cell: CorruptionCell) -> Task:
    params = {"corruption": cell.corruption, "family": SHIFTS.meta(cell.corruption).family,
              "severity": cell.severity, "table": cell.table, "seed": ctx.run.seed}
    return Task(cell, params, lambda c: classification_result(*cell_logits(c, cell)))


def build_corruptions(ctx: EvalContext, opts: CorruptionOptions) -> list[Task]:
    cells = corruption_grid(ctx.data.info.image_size, opts.corruptions, opts.severities, opts.params)
    adapted = adapted_tasks(ctx, adaptation(opts), SUITE, cells, lambda c, logits, labels: classification_result(logits, labels))
    return [cell_task(ctx, cell) for cell in cells] + adapted


def errors_by_corruption(rows: list[TaskRow], table: str) -> dict[str, dict[int, float]]:
    """{corruption: {severity: error}} from stored rows of one parameter table."""
    out: dict[str, dict[int, float]] = {}
    for row in rows:
        cell = row.id.task
        if isinstance(cell, CorruptionCell) and cell.table == table and "error" in row.metrics:
            out.setdefault(cell.corruption, {})[cell.severity] = float(row.metrics["error"])
    return out


def clean_error(ctx: EvalContext, fingerprint: str) -> float | None:
    for row in ctx.store.tasks(fingerprint, dataset=ctx.dataset, suite="clean", seed=ctx.run.seed,
                               with_artifacts=False):
        if isinstance(row.id.task, CleanCell):
            return float(row.metrics["error"])
    return None


def baseline_terms(ctx: EvalContext, baseline: str, errors: dict[str, dict[int, float]], severities: list[int],
                   table: str, metrics: dict[str, float]) -> dict[str, Any]:
    """CE, relative CE and mCE against the baseline's stored rows; the artifact that documents them."""
    fp = evaluated_fingerprint(baseline, ctx.run)
    base = errors_by_corruption(ctx.store.tasks(fp, dataset=ctx.dataset, suite=SUITE, seed=ctx.run.seed,
                                                with_artifacts=False), table)
    e_clean, b_clean = clean_error(ctx, ctx.fingerprint), clean_error(ctx, fp)
    info: dict[str, Any] = {"fingerprint": fp, "checkpoint": str(baseline),
                            "per_corruption": {n: [base[n].get(s) for s in severities] for n in base}}
    if not base or e_clean is None or b_clean is None:
        info["missing"] = ("the baseline has no clean and corruption rows on this data and seed in the store; "
                           f"run: shiftlab evaluate --model {baseline} --suite clean --suite corruptions")
        return info
    metrics["clean_error"], metrics["baseline_clean_error"] = e_clean, b_clean
    ces, rces = {}, {}
    for name in errors:
        sev = [s for s in severities if s in errors[name] and s in base.get(name, {})]
        if not sev:
            continue
        num, den = sum(errors[name][s] for s in sev), sum(base[name][s] for s in sev)
        ces[name] = num / den if den > 0 else float("inf")
        rden = sum(base[name][s] - b_clean for s in sev)
        rces[name] = sum(errors[name][s] - e_clean for s in sev) / rden if rden != 0 else float("inf")
        metrics[f"ce/{name}"], metrics[f"relative_ce/{name}"] = ces[name], rces[name]
    bench = benchmark_names()
    complete = all(n in errors and all(s in errors[n] for s in severities) for n in bench)
    if complete and all(n in ces for n in bench):
        metrics["mean_ce"] = sum(ces[n] for n in bench) / len(bench)
        metrics["relative_mean_ce"] = sum(rces[n] for n in bench) / len(bench)
    return info


def corruption_prerequisites(opts: CorruptionOptions, data_name: str) -> list[Prerequisite]:
    """The mCE baseline's clean and corruption rows on the same grid, evaluated first when missing."""
    if opts.baseline is None:
        return []
    grid = {"corruptions": opts.corruptions, "severities": opts.severities, "params": opts.params}
    return [Prerequisite(opts.baseline, ("clean", SUITE), {k: v for k, v in grid.items() if v is not None})]


def summarize_corruptions(ctx: EvalContext, opts: CorruptionOptions,
                          rows: list[TaskRow]) -> list[tuple[TaskIdentity, TaskResult]]:
    table = resolve_table(opts.params, ctx.data.info.image_size)
    severities = list(opts.severities or SEVERITIES)
    errors = errors_by_corruption(rows, table)  # unadapted cells only; adapted ones get a summary per setting
    adapted: list[tuple[TaskIdentity, TaskResult]] = [*adapted_summaries(rows, SUITE, table, lambda cell: cell)]
    if not errors:
        return adapted
    pool = [n for n in benchmark_names() if n in errors] or sorted(errors)
    cells = [errors[n][s] for n in pool for s in severities if s in errors[n]]
    mean_error = sum(cells) / len(cells)
    metrics: dict[str, float] = {"mean_corruption_error": mean_error, "mean_corruption_accuracy": 1.0 - mean_error}
    for name, by_sev in errors.items():
        vals = [by_sev[s] for s in severities if s in by_sev]
        if vals:
            metrics[f"error/{name}"] = sum(vals) / len(vals)
    artifacts: dict[str, Any] = {
        "per_corruption": {n: {"family": SHIFTS.meta(n).family, "errors": [errors[n].get(s) for s in severities]}
                           for n in errors},
    }
    normalisation = ("none: mean_corruption_error is the plain average of E_{s,c} over the 15 benchmark "
                     "corruptions and the chosen severities (CIFAR-10-C convention)")
    if opts.baseline is not None:
        artifacts["baseline"] = baseline_terms(ctx, opts.baseline, errors, severities, table, metrics)
        normalisation = (
            "CE_c = sum_s E_{s,c} / sum_s E^base_{s,c}; mCE = mean of CE_c over the 15 benchmark corruptions; "
            "relative CE_c = sum_s (E_{s,c} - E_clean) / sum_s (E^base_{s,c} - E^base_clean); errors are top-1 "
            "error rates in [0, 1] (Hendrycks & Dietterich 2019, arXiv:1903.12261). " + normalisation)
    complete = all(n in errors and all(s in errors[n] for s in severities) for n in benchmark_names())
    artifacts["protocol"] = {"table": table, "severities": severities, "seed": ctx.run.seed,
                             "corruptions": sorted(errors), "benchmark_complete": complete,
                             "normalisation": normalisation, "mce_reported": "mean_ce" in metrics,
                             "default_table": table == resolve_table(None, ctx.data.info.image_size)}
    return [(Summary(SUITE, table), TaskResult(metrics, artifacts)), *adapted]


SUITES.add(SUITE, Suite(SUITE, "accuracy under the 19 common corruptions × 5 severities (CIFAR-10-C/ImageNet-C "
                               "protocol) with mCE against a baseline", CorruptionOptions, build_corruptions,
                        summarize_corruptions, corruption_prerequisites),
           SuiteMeta(("Hendrycks & Dietterich 2019, arXiv:1903.12261",)))
