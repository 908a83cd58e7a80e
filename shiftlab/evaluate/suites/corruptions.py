"""The common-corruption suite: accuracy under the 15 + 4 corruptions of Hendrycks & Dietterich 2019,
"Benchmarking Neural Network Robustness to Common Corruptions and Perturbations" (arXiv:1903.12261).

One task per (corruption, severity), key ``corruptions/<name>/<severity>``; each batch is corrupted with
the generator derived from (seed, task key, batch index), through ``evaluate/corrupted.py`` (the images
and logits are shared with the calibration suite and, for the images, across models). The summary follows the paper:
CE_c = Σ_s E_{s,c} / Σ_s E^base_{s,c}; mCE = mean of CE_c over the 15 benchmark corruptions; relative
CE_c = Σ_s (E_{s,c} − E_clean) / Σ_s (E^base_{s,c} − E^base_clean). The unnormalised mean corruption
error (the CIFAR-10-C convention) is always reported.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from shiftlab.errors import UserError
from shiftlab.evaluate.classification import classification_result
from shiftlab.evaluate.corrupted import corrupted_logits, corruption_key, table_for
from shiftlab.evaluate.tasks import SUITES, EvalContext, Suite, Task, TaskResult
from shiftlab.shifts import SEVERITIES, SHIFTS, benchmark_names
from shiftlab.store import TaskRow

SUITE = "corruptions"


def chosen_corruptions(ctx: EvalContext) -> list[str]:
    names = list(ctx.options.corruptions) if ctx.options.corruptions else SHIFTS.names()
    for name in names:
        SHIFTS.entry(name)  # unknown names raise a UserError listing close matches
    return names


def chosen_severities(ctx: EvalContext) -> list[int]:
    severities = list(ctx.options.severities) if ctx.options.severities else list(SEVERITIES)
    bad = [s for s in severities if s not in SEVERITIES]
    if bad:
        raise UserError(f"--severities must be in 1..5, got {bad}")
    return severities


def chosen_table(ctx: EvalContext) -> str:
    return table_for(ctx)


def make_task(ctx: EvalContext, name: str, severity: int, table: str) -> Task:
    key = corruption_key(ctx, name, severity, table)

    def run(c: EvalContext) -> TaskResult:
        return classification_result(*corrupted_logits(c, name, severity, table, label=f"{name} s{severity}"))

    params = {"corruption": name, "family": SHIFTS.meta(name).family, "severity": severity,
              "table": table, "seed": ctx.options.seed}
    return Task(key=key, suite=SUITE, params=params, run=run)


def build_corruptions(ctx: EvalContext) -> list[Task]:
    table = chosen_table(ctx)
    severities = chosen_severities(ctx)
    return [make_task(ctx, name, s, table) for name in chosen_corruptions(ctx) for s in severities]


def errors_by_corruption(rows: list[TaskRow], table: str, seed: int) -> dict[str, dict[int, float]]:
    """{corruption: {severity: error}} from stored rows of one parameter table and seed."""
    out: dict[str, dict[int, float]] = {}
    for row in rows:
        p = row.params
        if "corruption" not in p or p.get("table") != table or row.id.seed != seed:
            continue
        out.setdefault(str(p["corruption"]), {})[int(p["severity"])] = float(row.metrics["error"])
    return out


def ensure_rows(ctx: EvalContext, suite: str) -> list[TaskRow]:
    """Run the suite's missing tasks for ``ctx`` (no summary) and return its stored rows."""
    from shiftlab.evaluate.runner import run_task

    for task in SUITES.get(suite).build(ctx):
        if not ctx.store.has_task(ctx.task_id(task.key)):
            run_task(ctx, task)
    return [r for r in ctx.store.tasks(ctx.fingerprint, dataset=ctx.dataset_key, suite=suite)
            if not r.id.task_key.endswith("/summary") and r.id.seed == ctx.options.seed]


def clean_error(ctx: EvalContext) -> float:
    rows = ensure_rows(ctx, "clean")
    return float(next(r for r in rows if r.id.task_key == "clean").metrics["error"])


def baseline_context(ctx: EvalContext) -> EvalContext:
    from shiftlab.evaluate.runner import make_context

    options = dataclasses.replace(ctx.options, baseline=None)
    return make_context(ctx.options.baseline, ctx.dataset, ctx.store, options,  # type: ignore[arg-type]
                        device=str(ctx.device), data_root=ctx.data_root)


def summarize_corruptions(ctx: EvalContext, rows: list[TaskRow]) -> TaskResult | None:
    table = chosen_table(ctx)
    severities = chosen_severities(ctx)
    errors = errors_by_corruption(rows, table, ctx.options.seed)
    if not errors:
        return None
    bench = [n for n in benchmark_names() if n in errors]
    pool = bench or sorted(errors)
    cells = [errors[n][s] for n in pool for s in severities if s in errors[n]]
    mean_error = sum(cells) / len(cells)
    metrics: dict[str, float] = {
        "mean_corruption_error": mean_error,
        "mean_corruption_accuracy": 1.0 - mean_error,
    }
    for name, by_sev in errors.items():
        vals = [by_sev[s] for s in severities if s in by_sev]
        if vals:
            metrics[f"error/{name}"] = sum(vals) / len(vals)
    artifacts: dict[str, Any] = {
        "per_corruption": {n: {"family": SHIFTS.meta(n).family,
                               "errors": [errors[n].get(s) for s in severities]} for n in errors},
    }
    normalisation = "none: mean_corruption_error is the plain average of E_{s,c} over the 15 benchmark " \
                    "corruptions and the chosen severities (CIFAR-10-C convention)"
    complete = all(n in errors and all(s in errors[n] for s in severities) for n in benchmark_names())
    if ctx.options.baseline is not None:
        bctx = baseline_context(ctx)
        base = errors_by_corruption(ensure_rows(bctx, SUITE), table, ctx.options.seed)
        e_clean, b_clean = clean_error(ctx), clean_error(bctx)
        metrics["clean_error"], metrics["baseline_clean_error"] = e_clean, b_clean
        ces, rces = {}, {}
        for name in errors:
            sev = [s for s in severities if s in errors[name] and s in base.get(name, {})]
            if not sev:
                continue
            num = sum(errors[name][s] for s in sev)
            den = sum(base[name][s] for s in sev)
            ces[name] = num / den if den > 0 else float("inf")
            rden = sum(base[name][s] - b_clean for s in sev)
            rces[name] = sum(errors[name][s] - e_clean for s in sev) / rden if rden != 0 else float("inf")
            metrics[f"ce/{name}"], metrics[f"relative_ce/{name}"] = ces[name], rces[name]
        if complete and all(n in ces for n in benchmark_names()):
            metrics["mce"] = sum(ces[n] for n in benchmark_names()) / len(benchmark_names())
            metrics["relative_mce"] = sum(rces[n] for n in benchmark_names()) / len(benchmark_names())
        artifacts["baseline"] = {"fingerprint": bctx.fingerprint, "checkpoint": str(ctx.options.baseline),
                                 "per_corruption": {n: [base[n].get(s) for s in severities] for n in base}}
        normalisation = (
            "CE_c = sum_s E_{s,c} / sum_s E^base_{s,c}; mCE = mean of CE_c over the 15 benchmark corruptions; "
            "relative CE_c = sum_s (E_{s,c} - E_clean) / sum_s (E^base_{s,c} - E^base_clean); errors are top-1 "
            "error rates in [0, 1] (Hendrycks & Dietterich 2019, arXiv:1903.12261). " + normalisation)
    artifacts["protocol"] = {
        "table": table, "severities": severities, "seed": ctx.options.seed,
        "corruptions": sorted(errors), "benchmark_complete": complete,
        "normalisation": normalisation,
        "mce_reported": "mce" in metrics,
    }
    return TaskResult(metrics=metrics, artifacts=artifacts)


SUITES.add(SUITE, Suite(SUITE, "accuracy under the 19 common corruptions × 5 severities (CIFAR-10-C/ImageNet-C "
                               "protocol) with mCE against a baseline", build_corruptions, summarize_corruptions))
